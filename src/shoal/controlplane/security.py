"""Secure mode of the control plane: the CA, bootstrap tokens, and TLS on the xDS port.

The xDS port then works like Istio's 15012: TLS with a serving certificate from the mesh's own
CA (renewed at half-life for new handshakes, ca/transport.py), ADS streams that must carry a
token matching the node's identity, and the certificate service beside ADS. `/debug/ca` shows
the trust bundle's public facts.

Tokens are shoal's own (`shoal1.`, issued by `shoal up`, for local workloads and VMs) or, with
a `reviewer` (Kubernetes), a pod's service-account token checked by a TokenReview
(kube/tokenreview.py). Either way the identity is what the token proves, never what the
request claims. A node proxy's token (ca/nodetokens.py) proves the node's own identity on
ADS, and at the CA the identities of the pods on that node, no others.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path

from shoal.ca import CertificateAuthority, TokenIssuer
from shoal.ca.authority import ROOTS
from shoal.ca.certs import fingerprint
from shoal.ca.identity import Identity
from shoal.ca.nodetokens import NodeTokens, is_node_token
from shoal.ca.service import CertificateService
from shoal.ca.tokens import PREFIX
from shoal.ca.transport import DEFAULT_LIFETIME, ServingCertificate
from shoal.xds.server import AdsServer

# `authorization` header -> (namespace, service account) by asking someone (a TokenReview)
Reviewer = Callable[[str | None], Awaitable[tuple[str, str]]]


class MeshSecurity:
    def __init__(
        self,
        ca_dir: Path,
        *,
        cert_ttl_s: float,
        max_cert_ttl_s: float = 0,
        reviewer: Reviewer | None = None,
        serving_lifetime: dt.timedelta = DEFAULT_LIFETIME,
    ) -> None:
        self.ca = CertificateAuthority(
            ca_dir,
            default_lifetime=dt.timedelta(seconds=cert_ttl_s),
            max_lifetime=dt.timedelta(seconds=max(max_cert_ttl_s, cert_ttl_s)),
        )
        self.tokens = TokenIssuer.in_dir(ca_dir)
        self.node_tokens = NodeTokens.in_dir(ca_dir)
        self.reviewer = reviewer
        self.service = CertificateService(
            self.ca, self.tokens, self._identity, node_tokens=self.node_tokens
        )
        self.serving = ServingCertificate(self.ca, lifetime=serving_lifetime)

    @property
    def roots_file(self) -> Path:
        """The trust bundle (public): agents pass it as `--ca-root`."""
        return self.ca.dir / ROOTS

    async def authenticate(self, header: str | None) -> tuple[str, str]:
        """(namespace, service account) that the `authorization` header proves."""
        return await self._authenticate(header)

    async def _authenticate(self, header: str | None) -> tuple[str, str]:
        if is_node_token(header):
            node = self.node_tokens.verify_header(header).identity
            return node.namespace, node.service_account
        if self.reviewer is not None and not _is_shoal_token(header):
            return await self.reviewer(header)
        identity = self.tokens.verify_header(header)
        return identity.namespace, identity.service_account

    async def _identity(self, header: str | None) -> Identity:
        return Identity(*await self._authenticate(header))

    def install(self, ads: AdsServer) -> None:
        ads.authenticate = self._authenticate
        ads.credentials = self.serving.credentials
        ads.more_credentials = self.serving.another_port
        ads.extra_handlers.append(self.service.handler())

    def describe(self) -> dict[str, object]:
        self.ca.reload_if_changed()
        return {
            "trust_domain": "cluster.local",
            "root": fingerprint(self.ca.root),
            "trusted_roots": [
                {
                    "fingerprint": fingerprint(c),
                    "subject": c.subject.rfc4514_string(),
                    "not_after": c.not_valid_after_utc.isoformat(timespec="seconds"),
                }
                for c in self.ca.roots
            ],
            "default_lifetime_s": self.ca.default_lifetime.total_seconds(),
            "issued": self.service.issued,
            "serving_certificate": self.serving.describe(),
        }


def _is_shoal_token(header: str | None) -> bool:
    _, _, token = (header or "").partition(" ")
    return token.strip().startswith(PREFIX + ".")
