"""Per-snapshot generation with sharing: each distinct resource is built and serialized once.

`ConfigGenerator` wraps one `MeshSnapshot`. Resources are memoized under the inputs they
depend on: clusters and endpoints on nothing proxy-specific, the outbound route table on the
proxy's namespace and outbound traffic policy (and labels only when a rule matches on source
labels), listeners on the proxy's ports (and labels only when a LocalRateLimit exists).
Gateway proxies (`router`) get listeners and routes from generate/gateway.py instead.
A thousand sidecars in one namespace therefore cost one generation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from shoal.generate import clusters, endpoints, gateway, listeners, outbound_policy, routes
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
    """Generates and memoizes the resources of one snapshot."""

    def __init__(self, snapshot: MeshSnapshot) -> None:
        self.snapshot = snapshot
        self._clusters: ResourceMap | None = None
        self._endpoints: ResourceMap | None = None
        self._routes: dict[tuple[object, ...], ResourceMap] = {}
        self._listeners: dict[tuple[object, ...], ResourceMap] = {}
        self._views: dict[tuple[object, ...], ProxyView] = {}
        self._cds_with: dict[tuple[str, ...], ResourceMap] = {}
        self._source_sensitive = any(
            m.source_labels
            for vs in snapshot.virtual_services
            for http in getattr(vs.spec, "http", ())
            for m in http.match
        )

    def clusters(self) -> ResourceMap:
        if self._clusters is None:
            items = [
                c
                for s in self.snapshot.services.values()
                for c in clusters.service_clusters(self.snapshot, s)
            ]
            self._clusters = _by_name(items)
        return self._clusters

    def endpoints(self) -> ResourceMap:
        if self._endpoints is None:
            items = [
                a
                for s in self.snapshot.services.values()
                for a in endpoints.service_assignments(self.snapshot, s)
            ]
            self._endpoints = _by_name(items)
        return self._endpoints

    def _route_key(self, proxy: Proxy) -> tuple[object, ...]:
        if proxy.type == "router":
            # gateway routes depend on which Gateways select the router, i.e. on its labels
            return ("router", proxy.namespace, proxy.labels_key)
        return (
            proxy.namespace,
            proxy.labels_key if self._source_sensitive else (),
            outbound_policy.outbound_mode(self.snapshot, proxy),
        )

    def routes(self, proxy: Proxy) -> ResourceMap:
        key = self._route_key(proxy)
        found = self._routes.get(key)
        if found is None:
            if proxy.type == "router":
                made = gateway.router_routes(self.snapshot, proxy)
            else:
                made = [routes.outbound_routes(self.snapshot, proxy)]
            found = self._routes[key] = _by_name(made)
        return found

    def _listener_key(self, proxy: Proxy) -> tuple[object, ...]:
        return (
            proxy.type,
            proxy.workload_name,
            # inbound filters (rate limits) and gateway servers select proxies by labels
            proxy.namespace,
            proxy.labels_key if self.snapshot.rate_limits or proxy.type == "router" else (),
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
        cds = self.clusters()
        extra = self.inbound_clusters(proxy)
        if extra:
            # proxies needing the same extra clusters share one map
            names = tuple(c.name for c in extra)
            merged = self._cds_with.get(names)
            if merged is None:
                merged = self._cds_with[names] = MappingProxyType(
                    {**cds, **{c.name: c for c in extra}}
                )
            cds = merged
        found = ProxyView(
            version=self.snapshot.version,
            resources=MappingProxyType(
                {
                    CLUSTER: cds,
                    ENDPOINT: self.endpoints(),
                    LISTENER: self.listeners(proxy),
                    ROUTE: self.routes(proxy),
                }
            ),
        )
        self._views[key] = found
        return found
