"""Per-workload credentials handed out by `shoal up --secure`.

Each agent gets a bootstrap token for its own identity (namespace, service account) in a
0600 file inside a private 0700 directory, plus the path of the mesh's public root bundle.
Tokens never travel on a command line (where `ps` would show them) nor into any log.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from shoal.ca import Identity
from shoal.controlplane.security import MeshSecurity


class Credentials:
    def __init__(
        self, security: MeshSecurity, token_dir: Path, *, owner_uid: int | None = None
    ) -> None:
        """`owner_uid`: agents run as this user (pods' sidecars): the directory, tokens and a
        copy of the roots are theirs."""
        self.security = security
        self.token_dir = token_dir
        self.owner_uid = owner_uid
        os.chmod(token_dir, 0o700)
        self.roots_file = security.roots_file
        if owner_uid is not None:
            os.chown(token_dir, owner_uid, owner_uid)
            self.roots_file = token_dir / "roots.pem"
            shutil.copyfile(security.roots_file, self.roots_file)
            os.chown(self.roots_file, owner_uid, owner_uid)

    def agent_args(self, name: str, namespace: str, service_account: str) -> list[str]:
        """`shoal agent` flags for the replica `name`: its token file and the trust bundle."""
        token = self.security.tokens.issue(Identity(namespace, service_account))
        path = self.token_dir / f"{namespace}.{name}.token"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(token)
        if self.owner_uid is not None:
            os.chown(path, self.owner_uid, self.owner_uid)
        return ["--token-file", str(path), "--ca-root", str(self.roots_file)]
