"""DestinationRule `tls` (Istio's `ClientTLSSettings`): how a sidecar connects to a service.

DISABLE: plaintext. SIMPLE: TLS, verifying the server against `caCertificates` (or the
system trust store) unless `insecureSkipVerify`. MUTUAL: SIMPLE plus a client certificate
(`clientCertificate` and `privateKey`). ISTIO_MUTUAL: the mesh's own certificates from SDS.
File paths (absolute, or relative to the config directory) are read by the control plane,
never by generation: `files()` lists them for the sources layer.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from shoal.api.base import ApiModel, Bool, field_error

_LABEL = r"[A-Za-z0-9](?:[-A-Za-z0-9_]*[A-Za-z0-9])?"
_SNI = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def _sni(value: str) -> str:
    # Envoy's UpstreamTlsContext.sni holds at most 255 bytes; TLS carries a DNS name there
    if value and (len(value) > 255 or not _SNI.fullmatch(value)):
        raise ValueError(f"sni {value[:60]!r} is not a DNS name (at most 255 characters)")
    return value


TlsMode = Literal["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"]


class ClientTLSSettings(ApiModel):
    mode: TlsMode = "DISABLE"
    client_certificate: str = ""
    private_key: str = ""
    ca_certificates: str = ""
    subject_alt_names: list[str] = Field(default_factory=list)
    sni: Annotated[str, AfterValidator(_sni)] = ""
    insecure_skip_verify: Bool | None = None
    # a credential (secrets/NAME/ or a kubernetes.io/tls Secret) holding the client
    # certificate and key (tls.crt, tls.key) and the CAs to trust (ca.crt), instead of files
    credential_name: str = ""

    @model_validator(mode="after")
    def _mutual_needs_cert(self) -> Self:
        if self.credential_name:
            for name, value in (
                ("clientCertificate", self.client_certificate),
                ("privateKey", self.private_key),
                ("caCertificates", self.ca_certificates),
            ):
                if value:
                    raise field_error(name, f"{name} and credentialName exclude each other")
            return self
        if self.mode == "MUTUAL":
            for name, value in (
                ("clientCertificate", self.client_certificate),
                ("privateKey", self.private_key),
            ):
                if not value:
                    raise field_error(name, f"tls mode MUTUAL needs {name}")
        return self

    def files(self) -> tuple[str, ...]:
        """Paths this setting refers to, for the control plane to read."""
        return tuple(
            p for p in (self.client_certificate, self.private_key, self.ca_certificates) if p
        )
