"""Tracing: Envoy's OpenTelemetry tracer (OTLP/gRPC, W3C `traceparent`) or Zipkin tracer
(B3 and W3C accepted and injected), per Istio's MeshConfig `extensionProviders` and
Telemetry `tracing`.

Which provider and which sampling apply: MeshConfig `defaultProviders.tracing` at Istio's
default 1 %, then the Telemetries of the mesh, the namespace and the workload in that order
(telemetry_policy.applicable), each entry for the proxy's side replacing what it sets.
`disableSpanReporting` keeps sampling and header propagation but sends no spans;
`customTags` (literal, environment, request header) become span attributes. Every HCM
then makes one span per request (client side: the caller's sidecar; server side: the
callee's), the app forwarding the context between its inbound and outbound requests.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import grpc_service_pb2, protocol_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2
from envoy.config.trace.v3 import opentelemetry_pb2, zipkin_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import wrappers_pb2

from shoal.api.meshconfig import ExtensionProvider
from shoal.api.telemetry import CustomTag
from shoal.common.canonical import tracing_service
from shoal.generate.prepared import PreparedResource, prepare
from shoal.generate.telemetry_policy import CLIENT, SERVER, SIDES, applicable
from shoal.model import MeshSnapshot, Proxy

DEFAULT_SAMPLING = 1.0  # percent, Istio's default
_HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


@dataclass(frozen=True)
class TracingPolicy:
    provider: ExtensionProvider
    sampling: float  # percent
    report: bool
    tags: tuple[tuple[str, CustomTag], ...] = ()  # Telemetry `customTags`, by name


def tracing_policy(snapshot: MeshSnapshot, proxy: Proxy, side: str) -> TracingPolicy | None:
    mesh = snapshot.mesh_config
    names = mesh.default_providers.tracing
    name = names[0] if names else None
    sampling, report = DEFAULT_SAMPLING, True
    tags: dict[str, CustomTag] = {}
    for spec in applicable(snapshot, proxy) if snapshot.telemetries else ():
        for entry in spec.tracing:
            if side not in SIDES[entry.match.mode]:
                continue
            if entry.providers:
                name = entry.providers[0].name
            if entry.random_sampling_percentage is not None:
                sampling = entry.random_sampling_percentage
            if entry.disable_span_reporting is not None:
                report = not entry.disable_span_reporting
            if entry.custom_tags:  # a level's tags replace those of the levels above
                tags = dict(entry.custom_tags)
    provider = mesh.provider(name) if name else None
    if provider is None or not provider.tracer:
        return None
    return TracingPolicy(provider, sampling, report, tuple(sorted(tags.items())))


def cluster_name(provider: ExtensionProvider) -> str:
    backend = provider.backend
    return f"tracing|{provider.name}|{backend.service}:{backend.port}"


def apply_tracing(
    hcm: hcm_pb2.HttpConnectionManager, snapshot: MeshSnapshot, proxy: Proxy, side: str
) -> None:
    policy = tracing_policy(snapshot, proxy, side)
    if policy is None:
        return
    hcm.tracing.random_sampling.value = policy.sampling
    for name, tag in policy.tags:
        added = hcm.tracing.custom_tags.add(tag=name)
        if tag.literal is not None:
            added.literal.value = tag.literal.value
        elif tag.environment is not None:
            added.environment.name = tag.environment.name
            added.environment.default_value = tag.environment.default_value
        elif tag.header is not None:
            added.request_header.name = tag.header.name
            added.request_header.default_value = tag.header.default_value
    if not policy.report:
        return
    # the Zipkin tracer has no service name of its own: it reports the node's cluster, which
    # the agent sets to the same name (agent/bootstrap.py)
    service = tracing_service(proxy.labels, proxy.workload_name, proxy.namespace)
    provider = hcm.tracing.provider
    if policy.provider.opentelemetry is not None:
        provider.name = "envoy.tracers.opentelemetry"
        otel = opentelemetry_pb2.OpenTelemetryConfig(
            grpc_service=grpc_service_pb2.GrpcService(
                envoy_grpc=grpc_service_pb2.GrpcService.EnvoyGrpc(
                    cluster_name=cluster_name(policy.provider)
                )
            ),
            service_name=service,
        )
        provider.typed_config.Pack(otel)
    else:
        provider.name = "envoy.tracers.zipkin"
        zipkin = zipkin_pb2.ZipkinConfig(
            collector_cluster=cluster_name(policy.provider),
            collector_endpoint="/api/v2/spans",
            collector_endpoint_version=zipkin_pb2.ZipkinConfig.HTTP_JSON,
            trace_id_128bit=True,
            # a BoolValue, not a bool: a plain False here raised for every zipkin provider
            shared_span_context=wrappers_pb2.BoolValue(value=False),
            trace_context_option=zipkin_pb2.ZipkinConfig.USE_B3_WITH_W3C_PROPAGATION,
        )
        provider.typed_config.Pack(zipkin)


def clusters(snapshot: MeshSnapshot, proxy: Proxy) -> list[PreparedResource]:
    """The collector clusters the proxy's tracers send to (one per provider in use)."""
    used: dict[str, ExtensionProvider] = {}
    for side in (CLIENT, SERVER):
        policy = tracing_policy(snapshot, proxy, side)
        if policy is not None and policy.report:
            used[cluster_name(policy.provider)] = policy.provider
    return [collector_cluster(name, p) for name, p in sorted(used.items())]


def collector_cluster(name: str, provider: ExtensionProvider) -> PreparedResource:
    """The cluster of one extension provider's collector (also the OTel access logs')."""
    backend = provider.backend
    try:
        ipaddress.ip_address(backend.service)
        kind = cluster_pb2.Cluster.STATIC
    except ValueError:
        kind = cluster_pb2.Cluster.STRICT_DNS
    cluster = cluster_pb2.Cluster(name=name, type=kind)
    cluster.connect_timeout.FromSeconds(1)
    cluster.load_assignment.cluster_name = name
    lb = cluster.load_assignment.endpoints.add().lb_endpoints.add()
    address = lb.endpoint.address.socket_address
    address.address, address.port_value = backend.service, backend.port
    assert isinstance(lb, endpoint_components_pb2.LbEndpoint)
    if provider.zipkin is None:  # OTLP/gRPC: HTTP/2
        options = http_protocol_options_pb2.HttpProtocolOptions()
        options.explicit_http_config.http2_protocol_options.CopyFrom(
            protocol_pb2.Http2ProtocolOptions()
        )
        cluster.typed_extension_protocol_options[_HTTP_OPTIONS].Pack(options)
    return prepare(name, cluster)
