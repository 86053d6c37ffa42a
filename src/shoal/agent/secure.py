"""Secure mode of the agent: the workload certificate, the SDS server, and the secured bootstrap.

Loaded only when the agent has a token (`--token-file`), so plain sidecars keep the light
import set of `python -m shoal.agent`.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from shoal.agent.certs import CertManager, WorkloadCertificate
from shoal.agent.process import RestartError
from shoal.agent.sds import SdsServer
from shoal.agent.securebootstrap import secure
from shoal.agent.security import AgentSecurity
from shoal.ca.identity import Identity


class SecureSidecar:
    def __init__(
        self, identity: Identity, security: AgentSecurity, ca_address: str, workdir: Path
    ) -> None:
        self.security = security
        self.sds = SdsServer(str(workdir / "sds.sock"))
        self.certs = CertManager(
            identity,
            ca_address=security.ca_address or ca_address,
            trust_pem=security.ca_root.read_text(),
            token_file=security.token_file,
            validity_s=security.cert_ttl_s,
            on_update=self._push,
        )
        self._task: asyncio.Task[None] | None = None

    def _push(self, cert: WorkloadCertificate) -> None:
        self.sds.update(cert.chain_pem, cert.key_pem, cert.roots_pem)

    async def start(self, stop: asyncio.Event) -> bool:
        """First certificate, then SDS; False if stopped before a certificate came."""
        if await self.certs.first(stop) is None:
            return False
        await self.sds.start()
        self._task = asyncio.create_task(self.certs.run(stop))
        return True

    def bootstrap(self, plain: dict[str, Any]) -> dict[str, Any]:
        """`plain` secured, with the token as the token file holds it now (read at every
        call: a rotated token goes into the next bootstrap). Raises RestartError if empty."""
        token = self.security.token_file.read_text().strip()
        if not token:
            raise RestartError(f"token file {self.security.token_file} is empty")
        return secure(plain, sds_socket=self.sds.socket_path, token=token)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.sds.stop()

    def describe(self) -> dict[str, object]:
        return {
            **self.certs.describe(),
            "sds_version": self.sds.version,
            "sds_pushes": self.sds.pushes,
        }
