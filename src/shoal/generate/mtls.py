"""TLS between sidecars and to services: SDS references, upstream and downstream contexts.

The contract with the agent (issue 5): a secure sidecar's Envoy (node metadata
`SECURE: "true"`) has a static cluster `sds-grpc` serving two SDS secrets, `default` (the
workload's certificate chain and key) and `ROOTCA` (the mesh trust bundle). Identities are
SPIFFE ids, `spiffe://cluster.local/ns/<namespace>/sa/<service-account>`.

Outbound (Istio's automatic mTLS, pilot/pkg/networking/core/cluster_tls.go): a cluster
carries `transport_socket_matches`; endpoints whose EDS metadata says `tlsMode: istio` (see
endpoints.py) get mesh mTLS (ALPN `istio`, server SAN checked against the service's
accounts), others plaintext. DestinationRule `tls` replaces this: DISABLE, SIMPLE, MUTUAL
(certificates inline from files the control plane read) or ISTIO_MUTUAL (always mesh mTLS).
A proxy without SDS never gets ISTIO_MUTUAL or automatic mTLS: it has no certificate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2, config_source_pb2, grpc_service_pb2
from envoy.extensions.transport_sockets.raw_buffer.v3 import raw_buffer_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2
from google.protobuf import any_pb2, struct_pb2

from shoal.api.clienttls import ClientTLSSettings
from shoal.model import Credential, Service

TRUST_DOMAIN = "cluster.local"
SDS_CLUSTER = "sds-grpc"
CERT_SECRET = "default"
ROOT_SECRET = "ROOTCA"
ALPN_ISTIO = "istio"
# The inbound side offers h2 and http/1.1 (Istio's ALPNDownstream). Callers offer only
# "istio", never "h2": a cluster carries a gateway's tcp_proxy bytes as well as HTTP, and a
# handshake that picked h2 makes the callee's connection manager read raw HTTP/1.1 as HTTP/2
# (the connection then closes with nothing sent back). HTTP/2 between sidecars needs no ALPN:
# the cluster's explicit http2_protocol_options speak it by prior knowledge and the callee's
# AUTO codec recognises the preface.
ALPN_DOWNSTREAM = ("h2", "http/1.1")
TLS_MODE_KEY = "tlsMode"
TLS_MODE_ISTIO = "istio"
TRANSPORT_SOCKET_MATCH = "envoy.transport_socket_match"
SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"
_TLS_SOCKET = "envoy.transport_sockets.tls"
_RAW_SOCKET = "envoy.transport_sockets.raw_buffer"


def spiffe_id(namespace: str, service_account: str) -> str:
    return f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{service_account}"


def _packed(message: object) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(message)  # type: ignore[arg-type]
    return out


def sds(name: str) -> secret_pb2.SdsSecretConfig:
    """A secret from the agent's SDS server (bootstrap cluster `sds-grpc`)."""
    source = config_source_pb2.ConfigSource(resource_api_version=config_source_pb2.V3)
    api = source.api_config_source
    api.api_type = config_source_pb2.ApiConfigSource.GRPC
    api.transport_api_version = config_source_pb2.V3
    api.grpc_services.append(
        grpc_service_pb2.GrpcService(
            envoy_grpc=grpc_service_pb2.GrpcService.EnvoyGrpc(cluster_name=SDS_CLUSTER)
        )
    )
    return secret_pb2.SdsSecretConfig(name=name, sds_config=source)


def _san_matchers(
    uris: Iterable[str], dns: Iterable[str] = ()
) -> list[common_pb2.SubjectAltNameMatcher]:
    out = [
        common_pb2.SubjectAltNameMatcher(
            san_type=common_pb2.SubjectAltNameMatcher.URI,
            matcher=string_pb2.StringMatcher(exact=u),
        )
        for u in uris
    ]
    out += [
        common_pb2.SubjectAltNameMatcher(
            san_type=common_pb2.SubjectAltNameMatcher.DNS,
            matcher=string_pb2.StringMatcher(exact=d),
        )
        for d in dns
    ]
    return out


def mesh_common_context(sans: Iterable[str] = ()) -> tls_pb2.CommonTlsContext:
    """Present the workload certificate; trust the mesh roots, checking peer SANs if given."""
    ctx = tls_pb2.CommonTlsContext()
    ctx.tls_certificate_sds_secret_configs.append(sds(CERT_SECRET))
    combined = ctx.combined_validation_context
    combined.default_validation_context.match_typed_subject_alt_names.extend(_san_matchers(sans))
    combined.validation_context_sds_secret_config.CopyFrom(sds(ROOT_SECRET))
    return ctx


def service_sans(service: Service) -> list[str]:
    """SPIFFE ids of the service's workloads (those that declare a service account)."""
    return sorted(
        {
            spiffe_id(service.namespace, e.service_account)
            for e in service.endpoints
            if e.service_account
        }
    )


def istio_mutual(sni: str, sans: Iterable[str]) -> tls_pb2.UpstreamTlsContext:
    ctx = tls_pb2.UpstreamTlsContext(sni=sni, common_tls_context=mesh_common_context(sans))
    ctx.common_tls_context.alpn_protocols.append(ALPN_ISTIO)
    return ctx


def _socket(
    ctx: tls_pb2.UpstreamTlsContext | tls_pb2.DownstreamTlsContext,
) -> base_pb2.TransportSocket:
    return base_pb2.TransportSocket(name=_TLS_SOCKET, typed_config=_packed(ctx))


def _raw() -> base_pb2.TransportSocket:
    return base_pb2.TransportSocket(
        name=_RAW_SOCKET, typed_config=_packed(raw_buffer_pb2.RawBuffer())
    )


def _inline(text: str) -> base_pb2.DataSource:
    return base_pb2.DataSource(inline_string=text)


def origination(
    tls: ClientTLSSettings,
    files: Mapping[str, str],
    default_sni: str,
    credentials: Mapping[str, Credential] | None = None,
) -> tls_pb2.UpstreamTlsContext | None:
    """SIMPLE or MUTUAL TLS to a server outside the mesh's identity (DestinationRule `tls`).

    None when a file it needs has not been read (yet): the cluster is then left plaintext
    rather than pushing what Envoy would reject; the control plane reports the missing file.
    """
    ctx = tls_pb2.UpstreamTlsContext(sni=tls.sni or default_sni)
    common = ctx.common_tls_context
    ca: str | None = None
    cert: str | None
    key: str | None
    if tls.credential_name:  # cert, key and CAs from one credential, as Istio's Secrets
        credential = (credentials or {}).get(tls.credential_name)
        if credential is None:
            return None
        cert, key = credential.cert_pem, credential.key_pem
        ca = credential.ca_pem or None
    else:
        cert, key = files.get(tls.client_certificate), files.get(tls.private_key)
        if tls.ca_certificates:
            ca = files.get(tls.ca_certificates)
            if ca is None:
                return None
    if tls.mode == "MUTUAL":
        if cert is None or key is None:
            return None
        common.tls_certificates.append(
            common_pb2.TlsCertificate(certificate_chain=_inline(cert), private_key=_inline(key))
        )
    if tls.insecure_skip_verify:
        return ctx
    validation = common.validation_context
    if ca is not None:
        validation.trusted_ca.CopyFrom(_inline(ca))
    else:
        # Istio's VERIFY_CERTIFICATE_AT_CLIENT: without caCertificates, the system roots
        validation.trusted_ca.CopyFrom(base_pb2.DataSource(filename=SYSTEM_CA))
    names = tls.subject_alt_names
    validation.match_typed_subject_alt_names.extend(
        _san_matchers([n for n in names if ":" in n], [n for n in names if ":" not in n])
    )
    return ctx


def h2_to_sidecars(tls: ClientTLSSettings | None, *, secure: bool, service: Service) -> bool:
    """Whether HTTP to `service` goes as HTTP/2 from a secure sidecar: it speaks mesh mTLS to
    a sidecar whose inbound listener accepts HTTP/2 (its HCM detects the codec).

    ISTIO_MUTUAL: every endpoint is mTLS. Automatic mTLS: only while every endpoint has a
    sidecar (a plaintext endpoint is an app that may speak HTTP/1.1 only). Envoy cannot
    choose the codec per transport-socket match (ALPN-based `auto_config` is refused beside a
    plaintext match), so it is decided per cluster; when the first endpoint without a sidecar
    appears, the cluster turns back to HTTP/1.1 before that endpoint is sent (CDS before
    EDS). Istio upgrades only when asked (`h2UpgradePolicy`); shoal upgrades between its own
    sidecars because one multiplexed TLS connection costs less per request than a pool of
    HTTP/1.1 ones (benchmarks/overhead_bench.py).
    """
    if not secure or (tls is not None and tls.mode != "ISTIO_MUTUAL"):
        return False
    if tls is not None:
        return True
    eds = service.resolution == "STATIC" or (
        service.resolution == "NONE" and bool(service.endpoints)
    )
    return eds and all(e.tls_mode == TLS_MODE_ISTIO for e in service.endpoints)


def istio_sni(port: int, subset: str, host: str) -> str:
    """Istio's SNI for mesh mTLS: `outbound_.PORT_.SUBSET_.HOST`."""
    return f"outbound_.{port}_.{subset}_.{host}"


def apply_client_tls(
    cluster: cluster_pb2.Cluster,
    tls: ClientTLSSettings | None,
    *,
    secure: bool,
    service: Service,
    port: int,
    subset: str,
    files: Mapping[str, str],
    credentials: Mapping[str, Credential] | None = None,
) -> None:
    """Set `cluster`'s transport socket(s): DestinationRule `tls`, else automatic mTLS."""
    sni = istio_sni(port, subset, service.hostname)
    if tls is not None and tls.mode == "DISABLE":
        return
    if tls is not None and tls.mode in ("SIMPLE", "MUTUAL"):
        ctx = origination(tls, files, service.hostname, credentials)
        if ctx is not None:
            cluster.transport_socket.CopyFrom(_socket(ctx))
        return
    if not secure:
        return  # no SDS on this proxy: no mesh certificate to present
    sans = list(tls.subject_alt_names) if tls is not None and tls.subject_alt_names else None
    ctx = istio_mutual(tls.sni if tls and tls.sni else sni, sans or service_sans(service))
    if tls is not None:  # ISTIO_MUTUAL: every endpoint, whatever its tlsMode
        cluster.transport_socket.CopyFrom(_socket(ctx))
        return
    match = struct_pb2.Struct()
    match.update({TLS_MODE_KEY: TLS_MODE_ISTIO})
    cluster.transport_socket_matches.append(
        cluster_pb2.Cluster.TransportSocketMatch(
            name="tlsMode-istio", match=match, transport_socket=_socket(ctx)
        )
    )
    cluster.transport_socket_matches.append(
        cluster_pb2.Cluster.TransportSocketMatch(
            name="tlsMode-disabled", match=struct_pb2.Struct(), transport_socket=_raw()
        )
    )


def downstream_mtls(alpn: Iterable[str] = ()) -> base_pb2.TransportSocket:
    """The inbound side: present the workload certificate, require a mesh client cert."""
    ctx = tls_pb2.DownstreamTlsContext(common_tls_context=mesh_common_context())
    ctx.require_client_certificate.value = True
    ctx.common_tls_context.alpn_protocols.extend(alpn)
    return _socket(ctx)
