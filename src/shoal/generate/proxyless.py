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

Listeners and route tables are built once per snapshot for each (namespace, Sidecar scope,
labels when a rule matches on source labels) and shared by every proxyless client with that
key; clusters and assignments once per service, both taken over from the previous snapshot
where their inputs did not change (`ProxylessResources`).
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
from shoal.generate import reuse, routes
from shoal.generate.faults import FAULT_FILTER, fault_filter_config
from shoal.generate.httpfilters import http_filter, packed, router
from shoal.generate.prepared import CLUSTER, ENDPOINT, LISTENER, ROUTE, PreparedResource, prepare
from shoal.generate.proxyless_clusters import (
    eds_service,
    service_assignments,
    service_clusters,
)
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


# (service, port, the dial names it claims) of each API listener group, in order
Plan = list[tuple[Service, Port, tuple[str, ...]]]


def plan(snapshot: MeshSnapshot, proxy: Proxy, visible: frozenset[str] | None) -> Plan:
    """Each dial name is claimed once, by the first service in name order, as a sidecar's
    route table does."""
    claimed: set[str] = set()
    out: Plan = []
    for service, port in _service_ports(snapshot, visible):
        names = tuple(n for n in dial_names(service, port, proxy) if n not in claimed)
        if names:
            claimed.update(names)
            out.append((service, port, names))
    return out


def listeners(groups: Plan) -> ResourceSet:
    return ResourceSet.of(
        api_listener(n, route_name(service, port)) for service, port, names in groups for n in names
    )


def _narrowed(resources: reuse.ServiceResources, visible: frozenset[str] | None) -> ResourceMap:
    return resources.resources if visible is None else resources.narrow(visible)


class ProxylessResources:
    """The proxyless resources of one snapshot, taken over from the previous snapshot's:
    clusters and assignments per service whose inputs are equal (reuse.take_over, as the
    sidecars' are); listeners and route tables whole after an endpoint-only push (`routing`:
    they do not depend on endpoints), else listener sets of the same shape and the route
    tables of unchanged VirtualServices when only VirtualServices changed. Holds no chain
    of earlier generations."""

    def __init__(
        self,
        snapshot: MeshSnapshot,
        previous: ProxylessResources | None,
        *,
        routing: bool,
        virtual_hosts: bool,
    ) -> None:
        self.snapshot = snapshot
        # listener sets by their shape, route tables by (view key, service, port, names,
        # VirtualService): only what this generation used is handed on (no growth); route
        # tables only when nothing but VirtualServices and endpoints changed, as the
        # sidecars' virtual hosts (routes.VhostCache)
        self.listeners_used: dict[tuple[object, ...], ResourceSet] = {}
        self.routes_used: dict[tuple[object, ...], PreparedResource] = {}
        self._prev_listeners = previous.listeners_used if previous is not None else {}
        self._prev_routes = (
            previous.routes_used if previous is not None and (routing or virtual_hosts) else {}
        )
        # (listeners, route tables) by the views' key
        self.tables: dict[tuple[object, ...], tuple[ResourceSet, ResourceSet]] = (
            dict(previous.tables) if previous is not None and routing else {}
        )
        self.clusters: dict[bool, reuse.ServiceResources] = {}
        self.endpoints: reuse.ServiceResources | None = None
        self._prev_clusters = dict(previous.clusters) if previous is not None else {}
        self._prev_endpoints = previous.endpoints if previous is not None else None

    def _clusters(self, secure: bool) -> reuse.ServiceResources:
        found = self.clusters.get(secure)
        if found is None:
            snapshot = self.snapshot

            def key(s: Service) -> object:
                base = reuse.cluster_key(snapshot, s)
                if not secure:
                    return base
                # server SANs and auto mTLS come from the endpoints (proxyless_tls.py)
                return (base, frozenset((e.service_account, e.tls_mode) for e in s.endpoints))

            found = self.clusters[secure] = reuse.take_over(
                snapshot,
                self._prev_clusters.get(secure),
                key,
                lambda s: service_clusters(snapshot, s, secure=secure),
            )
        return found

    def _endpoints(self) -> reuse.ServiceResources:
        if self.endpoints is None:
            snapshot = self.snapshot
            self.endpoints = reuse.take_over(
                snapshot,
                self._prev_endpoints,
                lambda s: reuse.assignment_key(snapshot, s),
                lambda s: service_assignments(snapshot, s),
            )
        return self.endpoints

    def _tables(
        self, proxy: Proxy, visible: frozenset[str] | None, key: tuple[object, ...]
    ) -> tuple[ResourceSet, ResourceSet]:
        groups = plan(self.snapshot, proxy, visible)
        # listeners are a function of the names and ports alone
        shape = tuple((s.hostname, p.number, names) for s, p, names in groups)
        lds = self.listeners_used.get(shape) or self._prev_listeners.get(shape)
        if lds is None:
            lds = listeners(groups)
        self.listeners_used[shape] = lds
        tables: list[PreparedResource] = []
        for service, port, names in groups:
            vs = self.snapshot.vs_by_host.get(service.hostname)
            rkey = (key, service.hostname, port.number, names, vs[0] if vs else None)
            made = self.routes_used.get(rkey) or self._prev_routes.get(rkey)
            if made is None:
                made = route_config(self.snapshot, proxy, service, port, list(names))
            self.routes_used[rkey] = made
            tables.append(made)
        return lds, ResourceSet.of(tables)

    def maps(
        self, proxy: Proxy, visible: frozenset[str] | None, key: tuple[object, ...]
    ) -> Mapping[str, ResourceMap]:
        """Everything a proxyless client may subscribe to, by type URL; `key`: what the
        listeners and route tables depend on (the proxy's namespace, labels, scope)."""
        tables = self.tables.get(key)
        if tables is None:
            tables = self.tables[key] = self._tables(proxy, visible, key)
        return MappingProxyType(
            {
                CLUSTER: _narrowed(self._clusters(proxy.secure), visible),
                ENDPOINT: _narrowed(self._endpoints(), visible),
                LISTENER: tables[0],
                ROUTE: tables[1],
            }
        )
