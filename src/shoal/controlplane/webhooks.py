"""The admission webhooks in a control-plane process: HTTPS on the webhook port (15017),
with a serving certificate from shoal's CA.

The certificate names the control plane's Service (`shoal-control-plane.shoal-system.svc`,
which the webhook configurations call), `localhost` and 127.0.0.1; the API server trusts it
through the webhook configurations' `caBundle`, the mesh's root.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import ssl
import tempfile
from pathlib import Path

from aiohttp import web

from shoal.ca import certs
from shoal.ca.authority import CertificateAuthority
from shoal.kube.inject import InjectorSettings
from shoal.kube.webhook import WebhookStats, start_webhooks

log = logging.getLogger("shoal.controlplane.webhooks")


# ca.server_certificate's default lifetime is 30 days; a new one well before it ends
RENEW_EVERY_S = 7 * 24 * 3600.0


def load_serving_certificate(
    context: ssl.SSLContext, ca: CertificateAuthority, lifetime: dt.timedelta | None = None
) -> dt.datetime:
    """Put a fresh key and a certificate from `ca` into `context` (new handshakes use it,
    open connections keep theirs); returns when the certificate expires."""
    key = certs.new_key()
    issued = (
        ca.server_certificate(key, lifetime=lifetime) if lifetime else ca.server_certificate(key)
    )
    # load_cert_chain reads files only; the key never outlives this call on disk
    with tempfile.TemporaryDirectory(prefix="shoal-webhook-") as tmp:
        cert_file, key_file = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert_file.write_text(issued.chain_pem)
        key_file.touch(mode=0o600)
        key_file.write_bytes(certs.key_pem(key))
        context.load_cert_chain(cert_file, key_file)
    return issued.not_after


def serving_context(ca: CertificateAuthority) -> ssl.SSLContext:
    """A TLS server context with a fresh key and a certificate from `ca`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    load_serving_certificate(context, ca)
    return context


class Webhooks:
    """The running webhook server, its counters (`/debug/webhooks`), and the renewal of its
    serving certificate (the API server refuses an expired one, which under
    failurePolicy Fail would stop every pod creation in injected namespaces)."""

    def __init__(
        self,
        ca: CertificateAuthority,
        settings: InjectorSettings,
        *,
        renew_every_s: float = RENEW_EVERY_S,
        lifetime: dt.timedelta | None = None,
    ) -> None:
        self.ca = ca
        self.settings = settings
        self.stats = WebhookStats()
        self.port = 0
        self.renewals = 0
        self.not_after: dt.datetime | None = None
        self._renew_every_s = renew_every_s
        self._lifetime = lifetime
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._runner: web.AppRunner | None = None
        self._renewer: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int) -> int:
        self.not_after = load_serving_certificate(self._context, self.ca, self._lifetime)
        self._runner, self.port = await start_webhooks(
            host, port, self._context, self.settings, self.stats
        )
        self._renewer = asyncio.create_task(self._renew())
        return self.port

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._renew_every_s)
            try:
                self.not_after = load_serving_certificate(self._context, self.ca, self._lifetime)
                self.renewals += 1
            except (OSError, ValueError, ssl.SSLError) as err:
                log.error("webhook serving certificate not renewed: %s; retrying", err)

    async def stop(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def describe(self) -> dict[str, object]:
        return {
            "port": self.port,
            "certificate_not_after": self.not_after.isoformat() if self.not_after else None,
            "certificate_renewals": self.renewals,
            "injector": {
                "image": self.settings.image,
                "xds_address": self.settings.xds_address,
                "revision": self.settings.revision or "default",
            },
            **dataclasses.asdict(self.stats),
        }
