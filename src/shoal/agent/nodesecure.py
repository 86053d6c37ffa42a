"""Secure mode of a node agent: one certificate per local service account, all over one SDS.

A node proxy serves several pods, so it holds several identities. Each gets its own key and
CertManager (renewed at half-life like a sidecar's); all ask the CA with the node token,
which lets the CA refuse any identity without a pod on this node (ca/nodetokens.py). The SDS
server serves each certificate under the pod identity's name (generate/nodeproxy.py's
`identity_secret`, which the node's clusters and listeners name) and `ROOTCA`. The same
interface as `SecureSidecar`, so the agent's main loop runs either.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from shoal.agent.certs import CertManager, WorkloadCertificate
from shoal.agent.process import RestartError
from shoal.agent.sds import SdsServer, named_secrets
from shoal.agent.securebootstrap import secure
from shoal.agent.security import AgentSecurity
from shoal.ca.identity import Identity
from shoal.generate.nodeproxy import identity_secret


class SecureNode:
    def __init__(
        self,
        identities: Iterable[Identity],
        security: AgentSecurity,
        ca_address: str,
        workdir: Path,
    ) -> None:
        self.security = security
        self.sds = SdsServer(str(workdir / "sds.sock"))
        self.certs = {
            identity: CertManager(
                identity,
                ca_address=security.ca_address or ca_address,
                trust_pem=security.ca_root.read_text(),
                token_file=security.token_file,
                validity_s=security.cert_ttl_s,
                on_update=self._push,
            )
            for identity in sorted(set(identities), key=str)
        }
        self._tasks: list[asyncio.Task[None]] = []

    def _push(self, _: WorkloadCertificate) -> None:
        held = {i: m.current for i, m in self.certs.items() if m.current is not None}
        if not held:
            return
        roots = next(iter(held.values())).roots_pem
        named = {
            identity_secret(i.namespace, i.service_account): (c.chain_pem, c.key_pem)
            for i, c in held.items()
        }
        self.sds.set_secrets(named_secrets(named, roots))

    async def start(self, stop: asyncio.Event) -> bool:
        """Every identity's first certificate, then SDS; False if stopped before."""
        firsts = await asyncio.gather(*(m.first(stop) for m in self.certs.values()))
        if any(c is None for c in firsts):
            return False
        await self.sds.start()
        self._tasks = [asyncio.create_task(m.run(stop)) for m in self.certs.values()]
        return True

    def bootstrap(self, plain: dict[str, Any]) -> dict[str, Any]:
        token = self.security.token_file.read_text().strip()
        if not token:
            raise RestartError(f"token file {self.security.token_file} is empty")
        return secure(plain, sds_socket=self.sds.socket_path, token=token)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.sds.stop()

    def describe(self) -> dict[str, object]:
        return {
            "identities": [m.describe() for m in self.certs.values()],
            "sds_version": self.sds.version,
            "sds_pushes": self.sds.pushes,
        }
