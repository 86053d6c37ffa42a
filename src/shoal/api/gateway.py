"""Gateway (networking.istio.io): the ports an edge proxy (`router` node) listens on.

Each server is one port with a protocol: HTTP/HTTP2/GRPC (routes from VirtualServices bound
to the gateway), HTTPS (the same, behind TLS termination with the certificate named by
`tls.credentialName`), TCP-like protocols (TCP, MONGO, MYSQL, REDIS: the bound
VirtualServices' `tcp` routes) and TLS with `mode: SIMPLE` (terminated, then `tcp` routes).
MUTUAL (client certificates checked against the credential's `ca.crt`) and ISTIO_MUTUAL (mesh
certificates both ways) are implemented; AUTO_PASSTHROUGH and file-path certificates are not yet.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from shoal.api.base import ApiModel, Port, field_error
from shoal.api.hosts import check_host
from shoal.api.serviceentry import Protocol

HTTP_LIKE = frozenset({"HTTP", "HTTP2", "GRPC", "GRPC-WEB"})
TCP_LIKE = frozenset({"TCP", "MONGO", "MYSQL", "REDIS"})


def check_server_host(entry: str) -> str:
    """A server host, `[namespace/]host`: the namespace `*`, `.` or a name; the host `*`, a
    DNS name or `*.suffix` (it becomes a virtual-host domain and an SNI of the listener, where
    Envoy refuses partial wildcards such as `a*.example.com`)."""
    namespace, sep, host = entry.rpartition("/")
    if sep and namespace not in ("*", ".") and not _NAMESPACE.fullmatch(namespace):
        raise ValueError(f"{entry!r}: {namespace!r} is not '*', '.' or a namespace name")
    check_host(host)
    return entry


_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
ServerHost = Annotated[str, AfterValidator(check_server_host)]


class GatewayPort(ApiModel):
    number: Port
    name: str = ""
    protocol: Protocol
    target_port: Port | None = None


TLS_VERSIONS = ("TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3")
TlsVersion = Literal["TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"]


class ServerTLSSettings(ApiModel):
    """TLS of one server: SIMPLE or MUTUAL termination with a named credential (MUTUAL also
    verifies client certificates against its `ca.crt`), ISTIO_MUTUAL with the mesh's
    certificates, or PASSTHROUGH."""

    mode: Literal["PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL"] = (
        "PASSTHROUGH"
    )
    credential_name: str = ""
    # on an HTTP server: answer every request with a 301 to its https:// URL
    https_redirect: bool = False
    # the TLS versions the server accepts (Istio's defaults: TLS 1.2 up to 1.3)
    min_protocol_version: TlsVersion = "TLS_AUTO"
    max_protocol_version: TlsVersion = "TLS_AUTO"

    @model_validator(mode="after")
    def _versions_ordered(self) -> Self:
        low, high = self.min_protocol_version, self.max_protocol_version
        if "TLS_AUTO" not in (low, high) and TLS_VERSIONS.index(low) > TLS_VERSIONS.index(high):
            raise field_error(
                "minProtocolVersion",
                f"minProtocolVersion {low} is above maxProtocolVersion {high}",
            )
        return self

    @model_validator(mode="after")
    def _simple_with_credential(self) -> Self:
        if self.mode == "PASSTHROUGH":
            return self  # the connection goes on unopened (VirtualService `tls` routes)
        if self.mode == "ISTIO_MUTUAL":
            # the gateway's own mesh certificate; clients present theirs (from the mesh CA)
            if self.credential_name:
                raise field_error(
                    "credentialName", "ISTIO_MUTUAL uses the mesh certificate: no credentialName"
                )
            return self
        if self.mode not in ("SIMPLE", "MUTUAL"):
            raise field_error(
                "mode",
                f"TLS mode {self.mode} is an Istio mode that shoal does not implement yet; "
                "use SIMPLE with credentialName, or PASSTHROUGH",
            )
        if not self.credential_name:
            extra = " and, for MUTUAL, ca.crt" if self.mode == "MUTUAL" else ""
            raise field_error(
                "credentialName",
                f"{self.mode} TLS needs credentialName (the secret directory "
                f"<config-dir>/secrets/<name>/ with tls.crt and tls.key{extra})",
            )
        return self


class Server(ApiModel):
    port: GatewayPort
    hosts: list[ServerHost] = Field(min_length=1)
    tls: ServerTLSSettings | None = None
    name: str = ""

    @model_validator(mode="after")
    def _protocol_and_tls(self) -> Self:
        protocol = self.port.protocol
        if protocol in ("HTTPS", "TLS") and self.tls is None:
            raise field_error("tls", f"a {protocol} server needs tls (mode SIMPLE)")
        # an HTTP server's tls may say httpsRedirect, and only that
        redirect_only = protocol in HTTP_LIKE and (
            self.tls is None or self.tls.model_fields_set == {"https_redirect"}
        )
        if protocol not in ("HTTPS", "TLS") and self.tls is not None and not redirect_only:
            raise field_error(
                "tls",
                f"on a {protocol} server tls may only say httpsRedirect (other tls "
                "settings belong to an HTTPS or TLS server)",
            )
        if protocol not in HTTP_LIKE | TCP_LIKE | {"HTTPS", "TLS"}:
            raise field_error(
                "port.protocol", f"protocol {protocol} on a gateway is not implemented yet"
            )
        return self

    @property
    def passthrough(self) -> bool:
        """TLS passed through unopened, routed by SNI (VirtualService `tls` routes)."""
        return (
            self.port.protocol in ("HTTPS", "TLS")
            and self.tls is not None
            and self.tls.mode == "PASSTHROUGH"
        )

    @property
    def https_redirect(self) -> bool:
        """An HTTP server that sends every request to https:// (Istio's httpsRedirect)."""
        return self.tls is not None and self.tls.https_redirect and self.port.protocol in HTTP_LIKE

    @property
    def is_http(self) -> bool:
        if self.passthrough:
            return False
        return self.port.protocol in HTTP_LIKE or self.port.protocol == "HTTPS"

    @property
    def server_names(self) -> tuple[str, ...]:
        """The SNI names a TLS server is told apart by on a shared port (`*`: none, any)."""
        return tuple(sorted({h.rpartition("/")[2] for h in self.hosts} - {"*"}))


class GatewaySpec(ApiModel):
    selector: dict[str, str] = Field(default_factory=dict)
    servers: list[Server] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_kind_per_port(self) -> Self:
        seen: dict[int, bool] = {}
        for i, server in enumerate(self.servers):
            first = seen.setdefault(server.port.number, server.is_http)
            if first != server.is_http:
                raise field_error(
                    f"servers.{i}.port.number",
                    f"port {server.port.number} mixes HTTP and TCP servers",
                )
        self._tls_apart()
        return self

    def _tls_apart(self) -> None:
        # TLS servers sharing a port become filter chains told apart by SNI: Envoy refuses
        # the listener when two claim one name (or both claim all, by `*` alone)
        claimed: dict[tuple[int, str], int] = {}
        for i, server in enumerate(self.servers):
            if server.tls is None or server.passthrough:  # passthrough: chains per tls route
                continue
            for name in server.server_names or ("*",):
                first = claimed.setdefault((server.port.number, name), i)
                if first != i:
                    raise field_error(
                        f"servers.{i}.hosts",
                        f"{name!r} on port {server.port.number} is already served with TLS by "
                        f"servers[{first}]; Envoy cannot tell the two apart by SNI",
                    )
