"""The workload's certificate: a key made here, a CSR to the CA, renewal at half-life.

The private key is generated in this process and only ever leaves it towards the local Envoy
(over the SDS Unix socket); the CA sees the CSR alone. Each renewal makes a new key. Renewal
happens at 50 % ± 10 % of the lifetime (jitter keeps a fleet started together from renewing
together); a failed renewal is retried with backoff while the old certificate stays served.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shoal.ca.client import create_certificate, secure_channel
from shoal.ca.identity import Identity

log = logging.getLogger("shoal.agent")


@dataclass(frozen=True)
class WorkloadCertificate:
    """What the agent holds: the key (PEM, memory only), the chain and the trust bundle."""

    key_pem: str
    chain: tuple[str, ...]
    roots: tuple[str, ...]
    received: float  # time.time() when it arrived
    not_after: dt.datetime
    serial: int
    issue_ms: float

    @property
    def chain_pem(self) -> str:
        return "".join(self.chain)

    @property
    def roots_pem(self) -> str:
        return "".join(self.roots)

    def renew_at(self, rng: random.Random) -> float:
        """Half-life with ±10 % jitter, as a time.time() value."""
        life = self.not_after.timestamp() - self.received
        return self.received + life * rng.uniform(0.4, 0.6)

    def describe(self) -> dict[str, object]:
        """Public facts only (for /debug): never the key."""
        return {
            "serial": f"{self.serial:x}",
            "not_after": self.not_after.isoformat(timespec="seconds"),
            "roots": len(self.roots),
            "issue_ms": round(self.issue_ms, 1),
        }


def new_key_and_csr(identity: Identity) -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity.spiffe_id)]),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, csr.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


class CertManager:
    """Keeps a valid certificate for `identity`; calls `on_update` with each new one."""

    def __init__(
        self,
        identity: Identity,
        *,
        ca_address: str,
        trust_pem: str,
        token_file: Path,
        validity_s: float = 0,
        on_update: Callable[[WorkloadCertificate], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.identity = identity
        self.ca_address = ca_address
        self.trust_pem = trust_pem  # roots that may have signed the control plane's cert
        self.token_file = token_file
        self.validity_s = validity_s
        self.on_update = on_update
        self.current: WorkloadCertificate | None = None
        self.renewals = 0
        self.failures = 0
        self._rng = rng or random.Random()

    def _trust(self) -> str:
        extra = self.current.roots if self.current is not None else ()
        return self.trust_pem + "".join(r for r in extra if r not in self.trust_pem)

    async def fetch(self) -> WorkloadCertificate:
        """One CSR round trip with a fresh key."""
        started = time.perf_counter()
        key, csr = new_key_and_csr(self.identity)
        token = self.token_file.read_text().strip()
        async with secure_channel(self.ca_address, self._trust()) as channel:
            reply = await create_certificate(channel, csr, self.validity_s, token)
        leaf = x509.load_pem_x509_certificate(reply.chain[0].encode())
        if leaf.public_key() != key.public_key():
            raise RuntimeError("the CA answered with a certificate for another key")
        cert = WorkloadCertificate(
            key_pem=_key_pem(key),
            chain=reply.chain,
            roots=reply.roots,
            received=time.time(),
            not_after=leaf.not_valid_after_utc,
            serial=leaf.serial_number,
            issue_ms=(time.perf_counter() - started) * 1000,
        )
        self.current = cert
        log.info(
            "certificate for %s (serial %x) until %s, issued in %.0f ms",
            self.identity,
            cert.serial,
            cert.not_after.isoformat(timespec="seconds"),
            cert.issue_ms,
        )
        if self.on_update is not None:
            self.on_update(cert)
        return cert

    async def first(self, stop: asyncio.Event) -> WorkloadCertificate | None:
        """The first certificate, retried until it comes or `stop` is set."""
        backoff = 0.2
        while not stop.is_set():
            try:
                return await self.fetch()
            except (grpc.aio.AioRpcError, OSError, RuntimeError) as err:
                self.failures += 1
                log.warning("no certificate yet for %s: %s", self.identity, _reason(err))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, 5.0)
        return None

    async def run(self, stop: asyncio.Event) -> None:
        """Renew at half-life (± jitter) until `stop`; retry failures with backoff."""
        while not stop.is_set():
            assert self.current is not None
            delay = max(0.0, self.current.renew_at(self._rng) - time.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
                return
            backoff = 0.5
            while not stop.is_set():
                try:
                    await self.fetch()
                    self.renewals += 1
                    break
                except (grpc.aio.AioRpcError, OSError, RuntimeError) as err:
                    self.failures += 1
                    log.warning("renewal for %s failed: %s", self.identity, _reason(err))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), backoff)
                    backoff = min(backoff * 2, 10.0)

    def describe(self) -> dict[str, object]:
        return {
            "identity": self.identity.spiffe_id,
            "renewals": self.renewals,
            "failures": self.failures,
            "certificate": self.current.describe() if self.current is not None else None,
        }


def _reason(err: Exception) -> str:
    if isinstance(err, grpc.aio.AioRpcError):
        return f"{err.code().name}: {err.details()}"
    return str(err)
