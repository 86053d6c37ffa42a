"""shoal.ca: the mesh's certificate authority.

A root CA (generated on first start in a CA directory, or supplied as files), an intermediate
that signs workload certificates for SPIFFE identities, root rotation with an overlap during
which old and new roots are both trusted, bootstrap tokens that bind a caller to its identity,
and the gRPC certificate service (Istio's `IstioCertificateService` shape).
"""

from shoal.ca.authority import CertificateAuthority, IssuedCertificate
from shoal.ca.identity import TRUST_DOMAIN, Identity, IdentityError, spiffe_id
from shoal.ca.tokens import TokenError, TokenIssuer

__all__ = [
    "TRUST_DOMAIN",
    "CertificateAuthority",
    "Identity",
    "IdentityError",
    "IssuedCertificate",
    "TokenError",
    "TokenIssuer",
    "spiffe_id",
]
