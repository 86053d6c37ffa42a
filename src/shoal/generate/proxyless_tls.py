"""mTLS for proxyless gRPC clients: gRPC's xDS security (gRFC A29), not Envoy's SDS.

A proxyless client holds its workload certificate through a certificate provider its
bootstrap names (`certificate_providers.default`, plugin `file_watcher`: shoal bootstrap grpc
--cert-dir), and dials with `grpc.xds_channel_credentials(...)`. Its clusters then carry an
UpstreamTlsContext that names that provider instance for its own certificate (`default`) and
for the roots it trusts (`ROOTCA`), and the SPIFFE ids of the service's workloads as the SANs
the server must present -- the same identities a sidecar's ISTIO_MUTUAL cluster checks
(mtls.py), without SDS, which gRPC does not speak.

When: the client says `SECURE: "true"` and the DestinationRule asks `ISTIO_MUTUAL`, or says
no `tls` while every endpoint has a mesh sidecar (auto mTLS). A DestinationRule `tls` the
client cannot honour (ISTIO_MUTUAL without a certificate, SIMPLE or MUTUAL with files) leaves
the cluster out: its calls fail rather than travel in plaintext.
"""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2

from shoal.api.clienttls import ClientTLSSettings
from shoal.generate.mtls import TLS_MODE_ISTIO, service_sans
from shoal.model import Service

PROVIDER = "default"  # the bootstrap's certificate provider instance
CERT_NAME = "default"
ROOTS_NAME = "ROOTCA"


def wants_mtls(tls: ClientTLSSettings | None, service: Service) -> bool:
    if tls is not None and tls.mode != "DISABLE":
        return tls.mode == "ISTIO_MUTUAL"
    if tls is not None:
        return False
    return (
        service.location == "MESH_INTERNAL"
        and bool(service.endpoints)
        and all(e.tls_mode == TLS_MODE_ISTIO for e in service.endpoints)
    )


def refused(tls: ClientTLSSettings | None, *, secure: bool) -> bool:
    """Whether the DestinationRule asks for TLS this client cannot speak."""
    if tls is None or tls.mode == "DISABLE":
        return False
    return tls.mode != "ISTIO_MUTUAL" or not secure


def transport_socket(service: Service) -> base_pb2.TransportSocket:
    ctx = tls_pb2.UpstreamTlsContext()
    common = ctx.common_tls_context
    common.tls_certificate_provider_instance.CopyFrom(
        common_pb2.CertificateProviderPluginInstance(
            instance_name=PROVIDER, certificate_name=CERT_NAME
        )
    )
    validation = common.combined_validation_context.default_validation_context
    validation.ca_certificate_provider_instance.CopyFrom(
        common_pb2.CertificateProviderPluginInstance(
            instance_name=PROVIDER, certificate_name=ROOTS_NAME
        )
    )
    # gRPC reads the plain `match_subject_alt_names` (gRFC A29), matched against every SAN;
    # grpcio 1.85 ignores the typed list a sidecar's clusters use (checked: it let a wrong
    # identity through)
    validation.match_subject_alt_names.extend(
        string_pb2.StringMatcher(exact=san) for san in service_sans(service)
    )
    out = base_pb2.TransportSocket(name="envoy.transport_sockets.tls")
    out.typed_config.Pack(ctx)
    return out
