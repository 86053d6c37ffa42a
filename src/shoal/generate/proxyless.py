"""Proxyless gRPC: what a gRPC library's own xDS client (grpcio's `xds:///` targets) is sent.

A proxyless client (node metadata GENERATOR "grpc", as Istio's) dials `xds:///HOST[:PORT]`
and asks LDS for exactly that name. So its listeners are API listeners, one per name a
caller may dial a service port by (the names a sidecar's virtual host answers to: the full
name and, in the service's own namespace, the short ones; with the port, and without it for
the service's default port). Each holds an HttpConnectionManager whose route table comes
over RDS, named `HOST:PORT` (one per service port, shared by all its names), with the fault
filter and the router last (gRFC A27/A33). Routes are the sidecar's (routes.py) shaped for
gRPC by proxyless_routes.py; clusters and endpoints by proxyless_clusters.py.

The client subscribes by name; the stream answers only the names asked for (xds/stream.py),
so holding every service's listener in the view costs the client nothing. Unlike Envoy, a
gRPC client asks for clusters only once it holds the routes naming them: its streams do not
hold routes back for their clusters (`StreamProtocol.ordered`).

Built once per snapshot for each (namespace, Sidecar scope, labels when a rule matches on
source labels) and shared by every proxyless client with that key.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType

from envoy.config.core.v3 import config_source_pb2
from envoy.config.listener.v3 import api_listener_pb2, listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from shoal.api import short_names
from shoal.generate import routes
from shoal.generate.faults import FAULT_FILTER, fault_filter_config
from shoal.generate.httpfilters import http_filter, packed, router
from shoal.generate.prepared import CLUSTER, ENDPOINT, LISTENER, ROUTE, PreparedResource, prepare
from shoal.generate.proxyless_clusters import eds_service, service_resources
from shoal.generate.proxyless_routes import grpc_virtual_host
from shoal.generate.resourceset import ResourceSet
from shoal.model import MeshSnapshot, Port, Proxy, Service

ResourceMap = Mapping[str, PreparedResource]


def route_name(service: Service, port: Port) -> str:
    return f"{service.hostname}:{port.number}"


def _default_port(service: Service) -> Port | None:
    http = [p for p in service.ports if p.is_http]
    return next((p for p in http if p.number == 80), http[0] if http else None)


def dial_names(service: Service, port: Port, proxy: Proxy) -> list[str]:
    """The `xds:///` targets (listener names) that reach (service, port) from `proxy`."""
    names = short_names(service.hostname)
    if service.namespace != proxy.namespace:
        names = [n for n in names if "." in n]  # short names resolve in the caller's namespace
    out = [f"{n}:{port.number}" for n in names]
    if port == _default_port(service):
        out += names
    return out


def api_listener(name: str, route_config: str) -> PreparedResource:
    hcm = hcm_pb2.HttpConnectionManager(
        stat_prefix=name,
        rds=hcm_pb2.Rds(
            route_config_name=route_config,
            config_source=config_source_pb2.ConfigSource(
                ads=config_source_pb2.AggregatedConfigSource(),
                resource_api_version=config_source_pb2.V3,
            ),
        ),
        # an empty fault config injects nothing; routes with a `fault` override it (A33)
        http_filters=[http_filter(FAULT_FILTER, fault_filter_config()), router()],
    )
    listener = listener_pb2.Listener(
        name=name, api_listener=api_listener_pb2.ApiListener(api_listener=packed(hcm))
    )
    return prepare(name, listener)


def route_config(
    snapshot: MeshSnapshot, proxy: Proxy, service: Service, port: Port, domains: list[str]
) -> PreparedResource:
    vh = grpc_virtual_host(routes.virtual_host(snapshot, proxy, service, port, tuple(domains)))
    name = route_name(service, port)
    config = route_pb2.RouteConfiguration(name=name, virtual_hosts=[vh])
    return prepare(name, config, refs=routes.route_refs(config))


def _service_ports(
    snapshot: MeshSnapshot, visible: frozenset[str] | None
) -> Iterator[tuple[Service, Port]]:
    for service in snapshot.services.values():
        if visible is not None and service.hostname not in visible:
            continue
        if not eds_service(service):
            continue
        for port in service.ports:
            if port.is_http:
                yield service, port


def listeners_and_routes(
    snapshot: MeshSnapshot, proxy: Proxy, visible: frozenset[str] | None
) -> tuple[ResourceSet, ResourceSet]:
    """API listeners (one per dial name, each name claimed once, by the first service in
    name order, as a sidecar's route table does) and their route tables."""
    claimed: set[str] = set()
    listeners: list[PreparedResource] = []
    tables: list[PreparedResource] = []
    for service, port in _service_ports(snapshot, visible):
        names = [n for n in dial_names(service, port, proxy) if n not in claimed]
        if not names:
            continue
        claimed.update(names)
        table = route_name(service, port)
        listeners.extend(api_listener(n, table) for n in names)
        tables.append(route_config(snapshot, proxy, service, port, names))
    return ResourceSet.of(listeners), ResourceSet.of(tables)


def clusters_and_endpoints(
    snapshot: MeshSnapshot, visible: frozenset[str] | None, *, secure: bool = False
) -> tuple[ResourceSet, ResourceSet]:
    clusters: list[PreparedResource] = []
    assignments: list[PreparedResource] = []
    for service in snapshot.services.values():
        if visible is not None and service.hostname not in visible:
            continue
        made_clusters, made_assignments = service_resources(snapshot, service, secure=secure)
        clusters += made_clusters
        assignments += made_assignments
    return ResourceSet.of(clusters), ResourceSet.of(assignments)


def maps(
    snapshot: MeshSnapshot, proxy: Proxy, visible: frozenset[str] | None
) -> Mapping[str, ResourceMap]:
    """Everything a proxyless client may subscribe to, by type URL."""
    lds, rds = listeners_and_routes(snapshot, proxy, visible)
    cds, eds = clusters_and_endpoints(snapshot, visible, secure=proxy.secure)
    return MappingProxyType({CLUSTER: cds, ENDPOINT: eds, LISTENER: lds, ROUTE: rds})
