"""The admission webhooks in a control-plane process: HTTPS on the webhook port (15017),
with a serving certificate from shoal's CA.

The certificate names the control plane's Service (`shoal-control-plane.shoal-system.svc`,
which the webhook configurations call), `localhost` and 127.0.0.1; the API server trusts it
through the webhook configurations' `caBundle`, the mesh's root.
"""

from __future__ import annotations

import dataclasses
import ssl
import tempfile
from pathlib import Path

from aiohttp import web

from shoal.ca import certs
from shoal.ca.authority import CertificateAuthority
from shoal.kube.inject import InjectorSettings
from shoal.kube.webhook import WebhookStats, start_webhooks


def serving_context(ca: CertificateAuthority) -> ssl.SSLContext:
    """A TLS server context with a fresh key and a certificate from `ca`."""
    key = certs.new_key()
    issued = ca.server_certificate(key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # load_cert_chain reads files only; the key never outlives this call on disk
    with tempfile.TemporaryDirectory(prefix="shoal-webhook-") as tmp:
        cert_file, key_file = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert_file.write_text(issued.chain_pem)
        key_file.touch(mode=0o600)
        key_file.write_bytes(certs.key_pem(key))
        context.load_cert_chain(cert_file, key_file)
    return context


class Webhooks:
    """The running webhook server and its counters (`/debug/webhooks`)."""

    def __init__(self, ca: CertificateAuthority, settings: InjectorSettings) -> None:
        self.ca = ca
        self.settings = settings
        self.stats = WebhookStats()
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self, host: str, port: int) -> int:
        self._runner, self.port = await start_webhooks(
            host, port, serving_context(self.ca), self.settings, self.stats
        )
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def describe(self) -> dict[str, object]:
        return {
            "port": self.port,
            "injector": {
                "image": self.settings.image,
                "xds_address": self.settings.xds_address,
                "revision": self.settings.revision or "default",
            },
            **dataclasses.asdict(self.stats),
        }
