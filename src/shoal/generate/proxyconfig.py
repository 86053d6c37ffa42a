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

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from shoal.api import Resource
from shoal.generate import (
    capture_listeners,
    clusters,
    emptydest,
    endpoints,
    gateway,
    listeners,
    nodeproxy,
    outbound_policy,
    proxyless,
    reuse,
    routes,
    scope,
    telemetry_accesslog,
    telemetry_tracing,
)
from shoal.generate.prepared import CLUSTER, ENDPOINT, LISTENER, ROUTE, PreparedResource
from shoal.generate.resourceset import ResourceSet
from shoal.model import MeshSnapshot, Proxy, PushRequest, Service

ResourceMap = Mapping[str, PreparedResource]


@dataclass(frozen=True)
class ProxyView:
    """Everything one proxy should hold, by type URL then resource name."""

    version: str
    resources: Mapping[str, ResourceMap]

    def of(self, type_url: str) -> ResourceMap:
        return self.resources.get(type_url, _EMPTY)


_EMPTY: ResourceMap = ResourceSet()


class ConfigGenerator:
    """Generates and memoizes the resources of one snapshot, taking over from `previous`
    (the generator of the snapshot before) whatever did not change (see reuse.py)."""

    def __init__(
        self,
        snapshot: MeshSnapshot,
        previous: ConfigGenerator | None = None,
        push: PushRequest | None = None,
    ) -> None:
        self.snapshot = snapshot
        # clusters of weighted destinations without endpoints (emptydest.py): routes depend
        # on it, so only transitions to and from empty rebuild routes. After a registry-only
        # push (routes, subsets and namespaces as before) only the changed hosts are checked.
        incremental = (
            previous is not None
            and push is not None
            and push.registry_only
            and previous.snapshot.mesh_config == snapshot.mesh_config
        )
        self.weighted_destinations: emptydest.WeightedDestinations = (
            previous.weighted_destinations
            if incremental and previous is not None
            else emptydest.weighted_destinations(snapshot)
        )
        self.empty_destinations: frozenset[str] = emptydest.empty_destinations(
            snapshot,
            self.weighted_destinations,
            previous=previous.empty_destinations if incremental and previous else None,
            hosts=push.hosts if incremental and push is not None else None,
        )
        self._routes: dict[tuple[object, ...], ResourceMap] = {}
        self._listeners: dict[tuple[object, ...], ResourceMap] = {}
        self._views: dict[tuple[object, ...], ProxyView] = {}
        self._scopes: dict[tuple[str, Resource | None], scope.Scope] = {}
        self._missing: dict[str, PreparedResource] = {}  # empty assignments by EDS name
        # (id of a CDS map, extra clusters' names) -> (that map, it merged with them)
        self._cds_with: dict[tuple[int, tuple[str, ...], bool], tuple[ResourceMap, ResourceSet]]
        self._cds_with = {}
        self._prev_cds_with: dict[
            tuple[int, tuple[str, ...], bool], tuple[ResourceMap, ResourceSet]
        ]
        self._prev_cds_with = {}
        # the previous snapshot's views: a proxy whose maps are all the same objects keeps
        # its view object, and its stream need not even wake up
        self._prev_views: dict[tuple[object, ...], ProxyView] = {}
        # per-service resources of this snapshot, built on first use from the previous ones
        # (per service, by value: safe whatever the push says)
        self._cds: reuse.ServiceResources | None = None
        self._secure_cds: reuse.ServiceResources | None = None
        self._eds: reuse.ServiceResources | None = None
        # the previous snapshot's per-service resources (not the generator: no chain of them)
        self._prev_cds = previous._cds if previous is not None else None
        self._prev_secure_cds = previous._secure_cds if previous is not None else None
        self._prev_eds = previous._eds if previous is not None else None
        # What else to take over is decided from what changed (the push request): without
        # one, or on a full push, nothing but the per-service resources above.
        keep = (
            reuse.Keep.of(
                previous.snapshot,
                snapshot,
                push,
                same_empty=previous.empty_destinations == self.empty_destinations,
            )
            if previous is not None and push is not None
            else reuse.Keep()
        )
        self.kept = keep
        # virtual hosts: taken over when nothing but VirtualServices changed (routes.py)
        self._vhosts: routes.VhostCache = routes.VhostCache(
            previous._vhosts if previous is not None and keep.virtual_hosts else None
        )
        if previous is not None:
            self._prev_cds_with = previous._cds_with
            self._prev_views = previous._views
            if keep.sidecar_listeners:
                # captured sidecars' listeners follow services (ports, addresses): not kept
                self._listeners = {
                    k: v
                    for k, v in previous._listeners.items()
                    if k[0] != "router" and not _captured_key(k)
                }
            if keep.routing:
                # endpoint-only change: every cluster, route table and listener stays
                self._cds = previous._cds
                self._routes = previous._routes
                self._listeners = previous._listeners
        # proxyless gRPC clients' resources (proxyless.py), taken over like the sidecars'
        self._proxyless: proxyless.ProxylessResources = proxyless.ProxylessResources(
            snapshot,
            previous._proxyless if previous is not None else None,
            routing=keep.routing,
            virtual_hosts=keep.virtual_hosts,
        )
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
        # whether some route applies to some callers only (their namespace or labels)
        self._vhost_source_sensitive = self._source_sensitive or any(
            m.source_namespace
            for vs in snapshot.virtual_services
            for http in getattr(vs.spec, "http", ())
            for m in http.match
        )

    def _taken_over(
        self,
        previous: reuse.ServiceResources | None,
        key: Callable[[Service], object],
        make: Callable[[Service], list[PreparedResource]],
    ) -> reuse.ServiceResources:
        return reuse.take_over(self.snapshot, previous, key, make)

    def clusters(self) -> ResourceMap:
        return self._cluster_set().resources

    def _cluster_set(self) -> reuse.ServiceResources:
        if self._cds is None:
            self._cds = self._taken_over(
                self._prev_cds,
                lambda s: reuse.cluster_key(self.snapshot, s),
                lambda s: clusters.service_clusters(self.snapshot, s),
            )
        return self._cds

    def secure_clusters(self) -> ResourceMap:
        """Clusters for proxies with SDS (automatic mTLS, ISTIO_MUTUAL; see mtls.py). Their
        server SANs come from the endpoints' service accounts and their HTTP version from the
        endpoints' tls modes, so those are part of each service's inputs when taking over
        from the previous snapshot."""
        return self._secure_cluster_set().resources

    def _secure_cluster_set(self) -> reuse.ServiceResources:
        if self._secure_cds is None:
            self._secure_cds = self._taken_over(
                self._prev_secure_cds,
                lambda s: (
                    reuse.cluster_key(self.snapshot, s),
                    frozenset(e.service_account for e in s.endpoints),
                    # HTTP/2 only while every endpoint has a sidecar (mtls.h2_to_sidecars)
                    frozenset(e.tls_mode for e in s.endpoints),
                ),
                lambda s: clusters.service_clusters(self.snapshot, s, secure=True),
            )
        return self._secure_cds

    def endpoints(self) -> ResourceMap:
        return self._endpoint_set().resources

    def _endpoint_set(self) -> reuse.ServiceResources:
        if self._eds is None:
            self._eds = self._taken_over(
                self._prev_eds,
                lambda s: reuse.assignment_key(self.snapshot, s),
                lambda s: endpoints.service_assignments(self.snapshot, s),
            )
        return self._eds

    def _route_key(self, proxy: Proxy) -> tuple[object, ...]:
        if proxy.type == "router":
            # gateway routes depend on which Gateways select the router, i.e. on its labels
            return ("router", proxy.namespace, proxy.labels_key)
        return (
            proxy.namespace,
            proxy.labels_key if self._source_sensitive else (),
            outbound_policy.outbound_mode(self.snapshot, proxy),
            scope.scope_key(self.snapshot, proxy),
            # captured sidecars' catch-all is the PassthroughCluster (outbound_policy.py)
            outbound_policy.captured(proxy),
        )

    def visible(self, proxy: Proxy) -> scope.Scope:
        """The services `proxy` may see (None: all), once per namespace and Sidecar."""
        key = scope.scope_key(self.snapshot, proxy)
        if key not in self._scopes:
            self._scopes[key] = scope.visible(self.snapshot, proxy)
        return self._scopes[key]

    @staticmethod
    def _narrowed(resources: reuse.ServiceResources, visible: scope.Scope) -> ResourceMap:
        return resources.resources if visible is None else resources.narrow(visible)

    def routes(self, proxy: Proxy) -> ResourceMap:
        key = self._route_key(proxy)
        found = self._routes.get(key)
        if found is None:
            if proxy.type == "router":
                made = gateway.router_routes(self.snapshot, proxy)
            else:
                source = (proxy.namespace, proxy.labels_key) if self._vhost_source_sensitive else ()
                made = [
                    routes.outbound_routes(
                        self.snapshot,
                        proxy,
                        self.visible(proxy),
                        self._vhosts,
                        source,
                        empty=self.empty_destinations,
                    )
                ]
            found = self._routes[key] = ResourceSet.of(made)
        return found

    def _route_filters(self, proxy: Proxy) -> frozenset[str]:
        """The HTTP filters the sidecar's outbound route table turns on: its listener holds
        those only (httpfilters.py)."""
        if proxy.type == "router":
            return frozenset()
        return frozenset().union(*(r.route_filters for r in self.routes(proxy).values()))

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
            # the proxy's metrics name it (generate/telemetry_labels.py)
            proxy.labels_key,
            proxy.service_account,
            proxy.service_host,
            # the per-route filters of its route table (a VirtualService's fault or CORS);
            # last: _captured_key reads positions
            self._route_filters(proxy),
        )

    def listeners(self, proxy: Proxy) -> ResourceMap:
        key = self._listener_key(proxy)
        found = self._listeners.get(key)
        if found is None:
            if proxy.type == "router":
                made = gateway.router_listeners(self.snapshot, proxy)
            elif outbound_policy.captured(proxy):
                made = capture_listeners.capture_listeners(
                    self.snapshot, proxy, self._route_filters(proxy)
                )
            else:
                made = listeners.sidecar_listeners(self.snapshot, proxy, self._route_filters(proxy))
            found = self._listeners[key] = ResourceSet.of(made)
        return found

    def missing(self, type_url: str, name: str) -> PreparedResource | None:
        """What to send for a name a proxy asks for that this generation does not have: an
        empty load assignment for EDS (Envoy then knows the cluster has no endpoints); one
        object per name for this generation, so the streams asking share it."""
        if type_url != ENDPOINT:
            return None
        found = self._missing.get(name)
        if found is None:
            found = self._missing[name] = endpoints.empty_assignment(name)
        return found

    def inbound_clusters(self, proxy: Proxy) -> list[PreparedResource]:
        """Clusters only some proxies hold: the local app, the catch-all forward proxy."""
        extra = outbound_policy.clusters(proxy)
        extra.extend(telemetry_tracing.clusters(self.snapshot, proxy))  # trace collectors
        extra.extend(telemetry_accesslog.clusters(self.snapshot, proxy))  # OTel log collectors
        if outbound_policy.captured(proxy):
            extra.extend(capture_listeners.clusters(self.snapshot, proxy))
        elif proxy.inbound_port is not None and proxy.app_port is not None:
            extra.append(clusters.inbound(proxy.app_port))
        return extra

    def _proxyless_view(self, proxy: Proxy) -> ProxyView:
        """A proxyless gRPC client's view (proxyless.py), shared per namespace, scope and
        (when rules match on them) labels. Maps equal to the previous snapshot's are taken
        over, so a change a client cannot see does not wake its stream."""
        # (secure: its clusters speak mTLS through its certificate provider, proxyless_tls.py)
        key = ("proxyless", proxy.secure, *self._route_key(proxy))
        found = self._views.get(key)
        if found is not None:
            return found
        made = self._proxyless.maps(proxy, self.visible(proxy), key)
        prior = self._prev_views.get(key)
        maps: dict[str, ResourceMap] = {}
        for type_url, new in made.items():
            old = prior.of(type_url) if prior is not None else None
            if (
                isinstance(old, ResourceSet)
                and isinstance(new, ResourceSet)
                and old.digest() == new.digest()
            ):
                maps[type_url] = old
            else:
                maps[type_url] = new
        if prior is not None and all(prior.resources.get(t) is m for t, m in maps.items()):
            found = prior
        else:
            found = ProxyView(version=self.snapshot.version, resources=MappingProxyType(maps))
        self._views[key] = found
        return found

    def _node_view(self, proxy: Proxy) -> ProxyView:
        """A node proxy's view: its pods' sidecar views rewritten into one (nodeproxy.py),
        made again only when some pod's view object changed."""
        pods = [(pod, self.view(pod.proxy)) for pod in proxy.node_pods]
        key = ("node", tuple((pod.key, pod.netns, id(view)) for pod, view in pods))
        found = self._views.get(key)
        if found is None:
            maps = nodeproxy.node_maps((pod, view.resources) for pod, view in pods)
            found = ProxyView(version=self.snapshot.version, resources=MappingProxyType(maps))
            self._views[key] = found
        return found

    def view(self, proxy: Proxy) -> ProxyView:
        """What `proxy` should hold under this snapshot (shared objects, no copies)."""
        if proxy.proxyless:
            return self._proxyless_view(proxy)
        if proxy.type == "node":
            return self._node_view(proxy)
        key = (self._route_key(proxy), self._listener_key(proxy))
        found = self._views.get(key)
        if found is not None:
            return found
        visible = self.visible(proxy)
        service_clusters = self._secure_cluster_set() if proxy.secure else self._cluster_set()
        cds = self._narrowed(service_clusters, visible)
        extra = self.inbound_clusters(proxy)
        if extra:
            # proxies needing the same extra clusters beside the same map share one map
            merged_key = (id(cds), tuple(c.name for c in extra), outbound_policy.captured(proxy))
            merged_found = self._cds_with.get(merged_key) or self._prev_cds_with.get(merged_key)
            if merged_found is not None and merged_found[0] is cds:
                merged = merged_found[1]
            else:
                merged = ResourceSet.of([*cds.values(), *extra])
            self._cds_with[merged_key] = (cds, merged)
            cds = merged
        maps = {
            CLUSTER: cds,
            ENDPOINT: self._narrowed(self._endpoint_set(), visible),
            LISTENER: self.listeners(proxy),
            ROUTE: self.routes(proxy),
        }
        prior = self._prev_views.get(key)
        if prior is not None and all(prior.resources.get(t) is m for t, m in maps.items()):
            found = prior
        else:
            found = ProxyView(version=self.snapshot.version, resources=MappingProxyType(maps))
        self._views[key] = found
        return found


def _captured_key(key: tuple[object, ...]) -> bool:
    # (type, workload, namespace, labels, secure, interception mode, outbound port, ...)
    return key[5] == "REDIRECT" and key[6] is None
