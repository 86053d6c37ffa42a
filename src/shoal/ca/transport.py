"""TLS for the control plane's secure port (Istio's 15012): a serving cert from its own CA."""

from __future__ import annotations

import grpc

from shoal.ca import certs
from shoal.ca.authority import CertificateAuthority


def server_credentials(ca: CertificateAuthority) -> grpc.ServerCredentials:
    """Server-side TLS with a fresh key and a certificate for the control plane's identity.

    Clients authenticate with tokens, not certificates, so no client certificate is asked for.
    """
    key = certs.new_key()
    issued = ca.server_certificate(key)
    return grpc.ssl_server_credentials(
        [(certs.key_pem(key), issued.chain_pem.encode())], require_client_auth=False
    )
