"""TLS for the control plane's secure port (Istio's 15012): a serving cert from its own CA,
renewed before it expires without touching open connections.

gRPC asks `ServingCertificate._fetch` for the certificate at every new TLS handshake (its
dynamic server credentials); once the certificate in use is past `renew_fraction` of its
lifetime the next handshake gets a fresh key and certificate, so a handshake never meets an
expired one. Connections already open keep the session they negotiated: TLS does not look at
the certificate again, and an ADS stream lives on across the renewal. A rotated root (`shoal
ca rotate-root`, a new intermediate in the CA directory) renews it at the next handshake too,
so the control plane needs no restart to serve a chain from the new signer.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

import grpc

from shoal.ca import certs
from shoal.ca.authority import CertificateAuthority

log = logging.getLogger("shoal.ca")

DEFAULT_LIFETIME = dt.timedelta(days=30)


class ServingCertificate:
    """The xDS/CA port's certificate and the gRPC credentials that serve (and renew) it.

    Clients authenticate with tokens, not certificates, so no client certificate is asked for.
    """

    def __init__(
        self,
        ca: CertificateAuthority,
        *,
        lifetime: dt.timedelta = DEFAULT_LIFETIME,
        renew_fraction: float = 0.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0 < renew_fraction < 1:
            raise ValueError("renew_fraction must be between 0 and 1")
        self.ca = ca
        self.lifetime = lifetime
        self.renew_fraction = renew_fraction
        self._clock = clock
        self.renewals = 0
        self.failures = 0
        # gRPC calls the fetcher from its own threads, one handshake at a time or not
        self._lock = threading.Lock()
        self.serial = 0
        self.not_after = dt.datetime.min.replace(tzinfo=dt.UTC)
        self._renew_at = 0.0
        self._signer = ca.signer
        self._generation = 0  # bumped by each certificate issued
        self._config = self._issue()
        self.credentials: grpc.ServerCredentials = self.another_port()

    def another_port(self) -> grpc.ServerCredentials:
        """Credentials for one more listening port. gRPC cannot share one dynamic
        credentials object between ports (the second port's first fetch finds nothing new and
        fails), so each port gets its own, each told of every renewal whichever port made it."""
        seen = [self._generation]

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            self._fetch()
            with self._lock:
                if seen[0] == self._generation:
                    return None
                seen[0] = self._generation
                return self._config

        return grpc.dynamic_ssl_server_credentials(
            self._config, fetch, require_client_authentication=False
        )

    def _issue(self) -> grpc.ServerCertificateConfiguration:
        key = certs.new_key()
        issued_at = self._clock()
        self._signer = self.ca.signer
        issued = self.ca.server_certificate(key, lifetime=self.lifetime)
        self.serial = certs.load_certs(issued.chain[0].encode())[0].serial_number
        self.not_after = issued.not_after
        life = issued.not_after.timestamp() - issued_at
        self._renew_at = issued_at + life * self.renew_fraction
        self._generation += 1
        self._config = grpc.ssl_server_certificate_configuration(
            [(certs.key_pem(key), issued.chain_pem.encode())]
        )
        return self._config

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """None: keep the certificate in use; else the one new handshakes get from now on."""
        with self._lock:
            self.ca.reload_if_changed()  # a few stat calls; it logs and keeps what it has
            rotated = self.ca.signer is not self._signer
            if self._clock() < self._renew_at and not rotated:
                return None
            try:
                config = self._issue()
            except Exception as err:  # a failure here must never fail the handshake
                self.failures += 1
                log.error("xDS serving certificate not renewed: %s; keeping the current one", err)
                return None
            self.renewals += 1
            log.info(
                "xDS serving certificate renewed (serial %x) until %s",
                self.serial,
                self.not_after.isoformat(timespec="seconds"),
            )
            return config

    def describe(self) -> dict[str, object]:
        return {
            "serial": f"{self.serial:x}",
            "not_after": self.not_after.isoformat(timespec="seconds"),
            "renewals": self.renewals,
            "failures": self.failures,
        }
