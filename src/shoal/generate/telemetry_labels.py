"""Istio's standard metric labels: which exist, and where each proxy takes their values from.

The contract is Istio's (`istio_requests_total` & co., the labels Kiali and Istio's Grafana
dashboards group by). The values are Envoy access-log format strings evaluated when a request
or connection ends (Envoy's `envoy.access_loggers.stats`):

- the reporting proxy's own identity is a literal rendered from its node metadata;
- the peer on the client side (`reporter="source"`, the callee) comes from the upstream
  endpoint's and cluster's EDS/CDS metadata (`istio` namespace, see `endpoint_metadata`) and
  the server certificate Envoy verified (`%UPSTREAM_PEER_URI_SAN%`);
- the peer on the server side (`reporter="destination"`, the caller) comes from the client
  certificate Envoy verified: principal and namespace (telemetry_peer.py reads them from the
  `x-forwarded-client-cert` Envoy itself sets), and the workload, app and version the caller's
  sidecar states, honoured only on an mTLS connection (telemetry_peer.py).

A missing value is an empty string in Envoy; the metrics port (agent/metricsport.py) turns it
into Istio's `unknown` (`latest` for canonical revisions) when it serves the text. Rendering
empty rather than `unknown` here keeps the two from ever becoming two series that the rename
would merge.
"""

from __future__ import annotations

from shoal.common.canonical import (  # re-exported: the generator's modules import them here
    app_of,
    canonical_revision,
    canonical_service,
    version_of,
)
from shoal.model import Endpoint, Proxy, Service

# Envoy names the stats `<prefix>.<name>`; Prometheus output adds `envoy_` (renamed away).
STATS_PREFIX = "istio"
# dynamic metadata namespace of the caller's identity on the server side (telemetry_peer.py)
PEER_NAMESPACE = "shoal.peer"
# CDS/EDS metadata namespace of the callee's identity on the client side
METADATA_NAMESPACE = "istio"
TRUST_DOMAIN = "cluster.local"

# Istio's label names, in the order Istio emits them (Kiali needs every one present).
HTTP_LABELS = (
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_canonical_service",
    "source_canonical_revision",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_service_name",
    "destination_service_namespace",
    "destination_canonical_service",
    "destination_canonical_revision",
    "request_protocol",
    "response_code",
    "grpc_response_status",
    "response_flags",
    "connection_security_policy",
)
# TCP series carry the same labels less the HTTP ones (Istio's TCP metrics)
_HTTP_ONLY = ("response_code", "grpc_response_status")
TCP_LABELS = tuple(x for x in HTTP_LABELS if x not in _HTTP_ONLY)
__all__ = ["app_of", "canonical_revision", "canonical_service", "version_of"]


def literal(value: str, default: str = "unknown") -> str:
    """`value` as an access-log format string that prints exactly it (Envoy refuses an empty
    one: a missing value is `default`; a label is either always literal or always looked up
    in one logger, so this never meets an empty value renamed to the same)."""
    return (value or default).replace("%", "%%")


def principal(namespace: str, service_account: str) -> str:
    return f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{service_account}"


def own_identity(proxy: Proxy, side: str) -> dict[str, str]:
    """The reporting proxy's own labels, `side` "source" or "destination", as literals."""
    workload = proxy.workload_name
    values = {
        "workload": workload,
        "workload_namespace": proxy.namespace,
        "app": app_of(proxy.labels),
        "version": version_of(proxy.labels),
        "canonical_service": canonical_service(proxy.labels, workload),
        "canonical_revision": canonical_revision(proxy.labels) or "latest",
    }
    return {f"{side}_{k}": literal(v) for k, v in values.items()}


def service_names(host: str, namespace: str) -> tuple[str, str]:
    """(destination_service_name, destination_service_namespace) of a service host."""
    parts = host.split(".")
    if len(parts) >= 3 and host.endswith(".svc.cluster.local"):
        return parts[0], parts[1]
    return host, namespace


def cluster_metadata(service: Service) -> dict[str, str]:
    """What a client proxy reports as the destination service of requests to `service`."""
    name, namespace = service_names(service.hostname, service.namespace)
    return {"service": service.hostname, "service_name": name, "service_namespace": namespace}


def endpoint_metadata(endpoint: Endpoint) -> dict[str, str]:
    """What a client proxy reports as the destination workload of requests to `endpoint`."""
    labels = endpoint.labels
    workload = endpoint.workload
    return {
        "workload": workload,
        "namespace": endpoint.namespace,
        "app": app_of(labels),
        "version": version_of(labels),
        "canonical_service": canonical_service(labels, workload),
        "canonical_revision": canonical_revision(labels),
    }


def upstream(key: str) -> str:
    return f"%METADATA(UPSTREAM_HOST:{METADATA_NAMESPACE}:{key})%"


def cluster(key: str) -> str:
    return f"%METADATA(CLUSTER:{METADATA_NAMESPACE}:{key})%"


def peer(key: str) -> str:
    return f"%DYNAMIC_METADATA({PEER_NAMESPACE}:{key})%"


# gRPC is a request with an `application/grpc*` content type (Istio's request_protocol):
# telemetry_peer.py's filter stores `application/grpc` or nothing, the metrics port prints
# `grpc` or `http` (no CEL per request: measured at ~4 us per expression and stat)
REQUEST_PROTOCOL = peer("protocol")
# empty unless the response is gRPC, as Istio leaves it
GRPC_STATUS = "%GRPC_STATUS(NUMBER)%"


def outbound_labels(proxy: Proxy) -> dict[str, str]:
    """Labels a client proxy reports (`reporter="source"`) for the requests it sends."""
    own = own_identity(proxy, "source")
    return {
        "reporter": "source",
        **own,
        "source_principal": literal(principal(proxy.namespace, proxy.service_account))
        if proxy.secure
        else "unknown",
        "destination_workload": upstream("workload"),
        "destination_workload_namespace": upstream("namespace"),
        "destination_principal": "%UPSTREAM_PEER_URI_SAN%",
        "destination_app": upstream("app"),
        "destination_version": upstream("version"),
        "destination_service": cluster("service"),
        "destination_service_name": cluster("service_name"),
        "destination_service_namespace": cluster("service_namespace"),
        "destination_canonical_service": upstream("canonical_service"),
        "destination_canonical_revision": upstream("canonical_revision"),
        "request_protocol": REQUEST_PROTOCOL,
        "response_code": "%RESPONSE_CODE%",
        "grpc_response_status": GRPC_STATUS,
        "response_flags": "%RESPONSE_FLAGS%",
        # only the server side knows both certificates (Istio reports `unknown` here too)
        "connection_security_policy": "unknown",
    }


def inbound_labels(proxy: Proxy, *, mtls: bool) -> dict[str, str]:
    """Labels a server proxy reports (`reporter="destination"`) for the requests it serves,
    on its mTLS filter chain (`mtls`) or its plaintext one."""
    own = own_identity(proxy, "destination")
    host = proxy.service_host
    name, namespace = service_names(host, proxy.namespace) if host else ("", "")
    return {
        "reporter": "destination",
        "source_workload": peer("workload"),
        "source_workload_namespace": peer("namespace"),
        "source_principal": peer("principal"),
        "source_app": peer("app"),
        "source_version": peer("version"),
        "source_canonical_service": peer("canonical_service"),
        "source_canonical_revision": peer("canonical_revision"),
        **own,
        "destination_principal": "%DOWNSTREAM_LOCAL_URI_SAN%" if mtls else "unknown",
        "destination_service": literal(host),
        "destination_service_name": literal(name),
        "destination_service_namespace": literal(namespace),
        "request_protocol": REQUEST_PROTOCOL,
        "response_code": "%RESPONSE_CODE%",
        "grpc_response_status": GRPC_STATUS,
        "response_flags": "%RESPONSE_FLAGS%",
        "connection_security_policy": "mutual_tls" if mtls else "none",
    }
