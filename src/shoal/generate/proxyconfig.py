"""Per-snapshot generation with sharing: each distinct resource is built and serialized once.

`ConfigGenerator` wraps one `MeshSnapshot`. Resources are memoized under the inputs they
depend on: clusters and endpoints on nothing proxy-specific, the outbound route table on the
proxy's namespace and outbound traffic policy (and labels only when a rule matches on source
labels), listeners on the proxy's ports and `secure` (and labels only when a LocalRateLimit or a
security policy exists); proxies with SDS (`secure`) get their own cluster set (mTLS).
Gateway proxies (`router`) get listeners and routes from generate/gateway.py instead.
A thousand sidecars in one namespace therefore cost one generation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from shoal.generate import (
    clusters,
    endpoints,
    gateway,
    listeners,
    outbound_policy,
    reuse,
    routes,
    scope,
)
from shoal.generate.prepared import CLUSTER, ENDPOINT, LISTENER, ROUTE, PreparedResource
from shoal.model import MeshSnapshot, Proxy

ResourceMap = Mapping[str, PreparedResource]


@dataclass(frozen=True)
class ProxyView:
    """Everything one proxy should hold, by type URL then resource name."""

    version: str
    resources: Mapping[str, ResourceMap]

    def of(self, type_url: str) -> ResourceMap:
        return self.resources.get(type_url, _EMPTY)


_EMPTY: ResourceMap = MappingProxyType({})


def _by_name(items: list[PreparedResource]) -> ResourceMap:
    return MappingProxyType({r.name: r for r in sorted(items, key=lambda r: r.name)})


class ConfigGenerator:
    """Generates and memoizes the resources of one snapshot, taking over from `previous`
    (the generator of the snapshot before) whatever did not change (see reuse.py)."""

    def __init__(self, snapshot: MeshSnapshot, previous: ConfigGenerator | None = None) -> None:
        self.snapshot = snapshot
        self.routing_inputs = reuse.routing_inputs(snapshot)
        self._clusters: ResourceMap | None = None
        self._endpoints: ResourceMap | None = None
        self._secure_clusters: ResourceMap | None = None
        self._routes: dict[tuple[object, ...], ResourceMap] = {}
        self._listeners: dict[tuple[object, ...], ResourceMap] = {}
        self._views: dict[tuple[object, ...], ProxyView] = {}
        self._scopes: dict[tuple[str, int], scope.Scope] = {}
        self._narrow_cache: dict[tuple[int, frozenset[str]], tuple[ResourceMap, ResourceMap]] = {}
        # extra clusters' names -> (the shared CDS map, it merged with them)
        self._cds_with: dict[tuple[str, ...], tuple[ResourceMap, ResourceMap]] = {}
        # per service: (inputs, resources) of the snapshot before, and of this one
        self._prev_clusters: dict[str, tuple[object, list[PreparedResource]]] = {}
        self._prev_assignments: dict[str, tuple[object, list[PreparedResource]]] = {}
        self._service_clusters: dict[str, tuple[object, list[PreparedResource]]] = {}
        self._service_assignments: dict[str, tuple[object, list[PreparedResource]]] = {}
        self._prev_secure: dict[str, tuple[object, list[PreparedResource]]] = {}
        self._service_secure: dict[str, tuple[object, list[PreparedResource]]] = {}
        self._prev_secure_map: ResourceMap | None = None
        self._prev_endpoints: ResourceMap | None = None
        self._prev_cds: ResourceMap | None = None
        self._prev_cds_with: dict[tuple[str, ...], tuple[ResourceMap, ResourceMap]] = {}
        self.reused_routing = False
        if previous is not None:
            self._prev_clusters = previous._service_clusters
            self._prev_assignments = previous._service_assignments
            self._prev_secure = previous._service_secure
            self._prev_secure_map = previous._secure_clusters
            self._prev_endpoints = previous._endpoints
            self._prev_cds = previous._clusters
            if previous.routing_inputs == self.routing_inputs:
                # endpoint-only change: every cluster, route table and listener stays
                self.reused_routing = True
                self._clusters = previous._clusters
                self._service_clusters = previous._service_clusters
                self._routes = previous._routes
                self._listeners = previous._listeners
            self._prev_cds_with = previous._cds_with
        self._label_sensitive = bool(
            snapshot.rate_limits
            or snapshot.peer_authentications
            or snapshot.authorization_policies
            or snapshot.request_authentications
        )
        self._source_sensitive = any(
            m.source_labels
            for vs in snapshot.virtual_services
            for http in getattr(vs.spec, "http", ())
            for m in http.match
        )

    def clusters(self) -> ResourceMap:
        if self._clusters is None:
            items = []
            unchanged = self._prev_cds is not None and len(self._prev_clusters) == len(
                self.snapshot.services
            )
            for service in self.snapshot.services.values():
                key = reuse.cluster_key(self.snapshot, service)
                prev = self._prev_clusters.get(service.hostname)
                if prev is not None and prev[0] == key:
                    made = prev[1]
                else:
                    made = clusters.service_clusters(self.snapshot, service)
                    unchanged = False
                self._service_clusters[service.hostname] = (key, made)
                items.extend(made)
            self._clusters = (
                self._prev_cds if unchanged and self._prev_cds is not None else _by_name(items)
            )
        return self._clusters

    def secure_clusters(self) -> ResourceMap:
        """Clusters for proxies with SDS (automatic mTLS, ISTIO_MUTUAL; see mtls.py). Their
        server SANs come from the endpoints' service accounts, so those are part of each
        service's inputs when taking over from the previous snapshot."""
        if self._secure_clusters is None:
            items = []
            unchanged = self._prev_secure_map is not None and len(self._prev_secure) == len(
                self.snapshot.services
            )
            for service in self.snapshot.services.values():
                key = (
                    reuse.cluster_key(self.snapshot, service),
                    frozenset(e.service_account for e in service.endpoints),
                )
                prev = self._prev_secure.get(service.hostname)
                if prev is not None and prev[0] == key:
                    made = prev[1]
                else:
                    made = clusters.service_clusters(self.snapshot, service, secure=True)
                    unchanged = False
                self._service_secure[service.hostname] = (key, made)
                items.extend(made)
            self._secure_clusters = (
                self._prev_secure_map
                if unchanged and self._prev_secure_map is not None
                else _by_name(items)
            )
        return self._secure_clusters

    def endpoints(self) -> ResourceMap:
        if self._endpoints is None:
            items = []
            unchanged = self._prev_endpoints is not None and len(self._prev_assignments) == len(
                self.snapshot.services
            )
            for service in self.snapshot.services.values():
                key = reuse.assignment_key(self.snapshot, service)
                prev = self._prev_assignments.get(service.hostname)
                if prev is not None and prev[0] == key:
                    made = prev[1]
                else:
                    made = endpoints.service_assignments(self.snapshot, service)
                    unchanged = False
                self._service_assignments[service.hostname] = (key, made)
                items.extend(made)
            # equal content keeps the same map object: streams skip it without looking inside
            self._endpoints = (
                self._prev_endpoints
                if unchanged and self._prev_endpoints is not None
                else _by_name(items)
            )
        return self._endpoints

    def _route_key(self, proxy: Proxy) -> tuple[object, ...]:
        if proxy.type == "router":
            # gateway routes depend on which Gateways select the router, i.e. on its labels
            return ("router", proxy.namespace, proxy.labels_key)
        return (
            proxy.namespace,
            proxy.labels_key if self._source_sensitive else (),
            outbound_policy.outbound_mode(self.snapshot, proxy),
            scope.scope_key(self.snapshot, proxy),
        )

    def visible(self, proxy: Proxy) -> scope.Scope:
        """The services `proxy` may see (None: all), once per namespace and Sidecar."""
        key = scope.scope_key(self.snapshot, proxy)
        if key not in self._scopes:
            self._scopes[key] = scope.visible(self.snapshot, proxy)
        return self._scopes[key]

    def _narrowed(self, resources: ResourceMap, visible: scope.Scope) -> ResourceMap:
        if visible is None:
            return resources
        key = (id(resources), visible)
        found = self._narrow_cache.get(key)
        if found is None or found[0] is not resources:
            found = (resources, MappingProxyType(scope.narrow(dict(resources), visible)))
            self._narrow_cache[key] = found
        return found[1]

    def routes(self, proxy: Proxy) -> ResourceMap:
        key = self._route_key(proxy)
        found = self._routes.get(key)
        if found is None:
            if proxy.type == "router":
                made = gateway.router_routes(self.snapshot, proxy)
            else:
                made = [routes.outbound_routes(self.snapshot, proxy, self.visible(proxy))]
            found = self._routes[key] = _by_name(made)
        return found

    def _listener_key(self, proxy: Proxy) -> tuple[object, ...]:
        return (
            proxy.type,
            proxy.workload_name,
            # inbound filters (rate limits, security policies) and gateway servers select
            # proxies by namespace and labels; a secure proxy's inbound listener speaks mTLS
            proxy.namespace,
            proxy.labels_key if self._label_sensitive or proxy.type == "router" else (),
            proxy.secure,
            proxy.interception_mode,
            proxy.outbound_port,
            proxy.inbound_port,
            proxy.app_port,
            proxy.instance_ips[:1],
        )

    def listeners(self, proxy: Proxy) -> ResourceMap:
        key = self._listener_key(proxy)
        found = self._listeners.get(key)
        if found is None:
            if proxy.type == "router":
                made = gateway.router_listeners(self.snapshot, proxy)
            else:
                made = listeners.sidecar_listeners(self.snapshot, proxy)
            found = self._listeners[key] = _by_name(made)
        return found

    def inbound_clusters(self, proxy: Proxy) -> list[PreparedResource]:
        """Clusters only some proxies hold: the local app, the catch-all forward proxy."""
        extra = outbound_policy.clusters(proxy)
        if proxy.inbound_port is not None and proxy.app_port is not None:
            extra.append(clusters.inbound(proxy.app_port))
        return extra

    def view(self, proxy: Proxy) -> ProxyView:
        """What `proxy` should hold under this snapshot (shared objects, no copies)."""
        key = (self._route_key(proxy), self._listener_key(proxy))
        found = self._views.get(key)
        if found is not None:
            return found
        visible = self.visible(proxy)
        cds = self._narrowed(self.secure_clusters() if proxy.secure else self.clusters(), visible)
        extra = self.inbound_clusters(proxy)
        if extra:
            # proxies needing the same extra clusters share one map
            names = tuple(c.name for c in extra)
            found_merged = self._cds_with.get(names) or self._prev_cds_with.get(names)
            if found_merged is not None and found_merged[0] is cds:
                merged = found_merged[1]
            else:
                merged = MappingProxyType({**cds, **{c.name: c for c in extra}})
                self._cds_with[names] = (cds, merged)
            cds = merged
        found = ProxyView(
            version=self.snapshot.version,
            resources=MappingProxyType(
                {
                    CLUSTER: cds,
                    ENDPOINT: self._narrowed(self.endpoints(), visible),
                    LISTENER: self.listeners(proxy),
                    ROUTE: self.routes(proxy),
                }
            ),
        )
        self._views[key] = found
        return found
