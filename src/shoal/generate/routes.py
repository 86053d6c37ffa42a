"""RDS: the outbound route table of a sidecar, from VirtualServices (or the default route).

One virtual host per (service, port). Its domains are the names a caller may use for the
service: the full name and, from the service's own namespace, the short names, each with and
without the port, plus the service's addresses. Envoy refuses a route table in which two
virtual hosts share a domain, so each domain is claimed once (first service in name order).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.type.matcher.v3 import regex_pb2, string_pb2

from shoal.api import Resource, short_names
from shoal.api.virtualservice import (
    HeaderOperations,
    Headers,
    HTTPMatchRequest,
    HTTPRoute,
    StringMatch,
    VirtualServiceSpec,
)
from shoal.generate import meshexit, outbound_policy, protowire
from shoal.generate.cors import CORS_FILTER, cors_policy
from shoal.generate.destinations import destination_cluster
from shoal.generate.faults import FAULT_FILTER, http_fault
from shoal.generate.hashpolicy import hash_policies
from shoal.generate.httpfilters import enabled_on_route
from shoal.generate.mirror import mirror_policies
from shoal.generate.names import OUTBOUND_ROUTE, outbound_cluster
from shoal.generate.prepared import ROUTE as ROUTE_TYPE
from shoal.generate.prepared import PreparedResource, prepare_serialized
from shoal.generate.retries import retry_policy
from shoal.generate.rewrites import apply_rewrite, direct_response_action, redirect_action
from shoal.memo import Memo
from shoal.model import MeshSnapshot, Port, Proxy, Service

_OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
_APPEND = base_pb2.HeaderValueOption.APPEND_IF_EXISTS_OR_ADD


def _string_matcher(m: StringMatch, ignore_case: bool = False) -> string_pb2.StringMatcher:
    if m.exact is not None:
        return string_pb2.StringMatcher(exact=m.exact, ignore_case=ignore_case)
    if m.prefix is not None:
        return string_pb2.StringMatcher(prefix=m.prefix, ignore_case=ignore_case)
    return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=m.regex or ""))


def _header(name: str, m: StringMatch, invert: bool = False) -> rc.HeaderMatcher:
    if m.exact is None and m.prefix is None and m.regex is None:
        # `{}` in Istio means "the header is present"
        return rc.HeaderMatcher(name=name, present_match=True, invert_match=invert)
    return rc.HeaderMatcher(name=name, string_match=_string_matcher(m), invert_match=invert)


def _route_match(m: HTTPMatchRequest | None) -> rc.RouteMatch:
    match = rc.RouteMatch()
    if m is None or m.uri is None:
        match.prefix = "/"
    elif m.uri.exact is not None:
        match.path = m.uri.exact
    elif m.uri.prefix is not None:
        match.prefix = m.uri.prefix
    else:
        match.safe_regex.regex = m.uri.regex or ""
    if m is None:
        return match
    if m.ignore_uri_case:
        match.case_sensitive.value = False
    for name, sm in sorted(m.headers.items()):
        match.headers.append(_header(name.lower(), sm))
    for name, sm in sorted(m.without_headers.items()):
        match.headers.append(_header(name.lower(), sm, invert=True))
    for pseudo, pm in ((":method", m.method), (":authority", m.authority), (":scheme", m.scheme)):
        if pm is not None:
            match.headers.append(_header(pseudo, pm))
    for name, sm in sorted(m.query_params.items()):
        match.query_parameters.append(
            rc.QueryParameterMatcher(name=name, string_match=_string_matcher(sm))
        )
    return match


def _applies(m: HTTPMatchRequest, port: Port, proxy: Proxy) -> bool:
    """Match conditions Istio evaluates when generating config, not per request."""
    if m.port is not None and m.port != port.number:
        return False
    if m.gateways and "mesh" not in m.gateways:
        return False
    if m.source_namespace and m.source_namespace != proxy.namespace:
        return False
    return all(proxy.labels.get(k) == v for k, v in m.source_labels.items())


def _header_options(ops: HeaderOperations) -> list[base_pb2.HeaderValueOption]:
    out = [
        base_pb2.HeaderValueOption(
            header=base_pb2.HeaderValue(key=k, value=v), append_action=_OVERWRITE
        )
        for k, v in sorted(ops.set.items())
        if not _internal(k)
    ]
    out += [
        base_pb2.HeaderValueOption(
            header=base_pb2.HeaderValue(key=k, value=v), append_action=_APPEND
        )
        for k, v in sorted(ops.add.items())
        if not _internal(k)
    ]
    return out


def _internal(name: str) -> bool:
    """Pseudo-headers and Host cannot be changed as headers (Istio's isInternalHeader)."""
    return name.startswith(":") or name.lower() == "host"


def _authority(h: Headers | None) -> str:
    """A Host set through request headers becomes a host rewrite, as in Istio (`set` wins)."""
    if h is None or h.request is None:
        return ""
    for ops in (h.request.set, h.request.add):
        for k, v in ops.items():
            if k.lower() in (":authority", "host"):
                return v
    return ""


def _apply_headers(target: rc.Route | rc.WeightedCluster.ClusterWeight, h: Headers | None) -> None:
    if h is None:
        return
    if h.request is not None:
        target.request_headers_to_add.extend(_header_options(h.request))
        target.request_headers_to_remove.extend(k for k in h.request.remove if not _internal(k))
    if h.response is not None:
        target.response_headers_to_add.extend(_header_options(h.response))
        target.response_headers_to_remove.extend(k for k in h.response.remove if not _internal(k))


_cluster_for = destination_cluster


def _set_timeout(action: rc.RouteAction, timeout: float | None) -> None:
    """Istio disables Envoy's 15 s default: no route timeout unless the VirtualService sets one.

    gRPC callers' `grpc-timeout` header is honoured up to the route timeout (no cap without
    one) via `max_grpc_timeout`, exactly as Istio's setTimeout does (deprecated in Envoy, still
    honoured by 1.40); Envoy then passes the remaining time on in `grpc-timeout` and
    `x-envoy-expected-rq-timeout-ms`."""
    nanos = int((timeout or 0.0) * 1e9)
    action.timeout.FromNanoseconds(nanos)
    # Not max_stream_duration.grpc_timeout_header_max: setting max_stream_duration switches
    # the route to Envoy's "new timeouts", which ignore `timeout` (checked: no more 504).
    action.max_grpc_timeout.FromNanoseconds(nanos)


def policy_filters(vs: Resource | None) -> frozenset[str]:
    """The per-route HTTP filters `vs`'s routes turn on (`_policies`): the outbound listener
    carries these only where some route of its table needs them (httpfilters.py)."""
    if vs is None or not isinstance(vs.spec, VirtualServiceSpec):
        return frozenset()
    out = set()
    for http in vs.spec.http:
        if http.fault is not None:
            out.add(FAULT_FILTER)
        if http.cors_policy is not None:
            out.add(CORS_FILTER)
    return frozenset(out)


def _policies(snapshot: MeshSnapshot, http: HTTPRoute, route: rc.Route) -> None:
    """Per-route filter configs: fault injection and CORS."""
    # the filters are disabled on the listener unless the route turns them on (httpfilters.py)
    if http.fault is not None:
        route.typed_per_filter_config[FAULT_FILTER].CopyFrom(
            enabled_on_route(http_fault(http.fault))
        )
    if http.cors_policy is not None:
        route.typed_per_filter_config[CORS_FILTER].CopyFrom(
            enabled_on_route(cors_policy(http.cors_policy))
        )


def _action(
    snapshot: MeshSnapshot,
    http: HTTPRoute,
    namespace: str,
    port: Port,
    route: rc.Route,
    *,
    empty: frozenset[str] = frozenset(),
    needs: set[str] | None = None,
) -> None:
    """Fill `route`'s action. `empty`: clusters without endpoints (emptydest.py); the
    clusters a weighted route keeps because they have endpoints are added to `needs`."""
    needs = needs if needs is not None else set()
    _policies(snapshot, http, route)
    _apply_headers(route, http.headers)
    if http.redirect is not None:
        route.redirect.CopyFrom(redirect_action(http.redirect, port.number))
        return
    if http.direct_response is not None:
        route.direct_response.CopyFrom(direct_response_action(http.direct_response))
        return
    action = route.route
    dests = [d for d in http.route if d.weight > 0 or len(http.route) == 1]
    if len(dests) == 1 and dests[0].headers is None:
        action.cluster = _cluster_for(snapshot, dests[0].destination, namespace, port)
        if meshexit.destination_outside(snapshot, dests[0].destination, namespace):
            meshexit.strip_peer_headers(route)
    else:
        names = [_cluster_for(snapshot, d.destination, namespace, port) for d in dests]
        # emptydest.py: an empty destination's share goes to the others, unless all are empty
        held = {n for n in names if n in empty} if len(names) > 1 else set()
        if held and len(held) < len(names):
            needs.update(n for n in names if n not in held)
        else:
            held = set()
        for d, name in zip(dests, names, strict=True):
            cw = rc.WeightedCluster.ClusterWeight(name=name)
            cw.weight.value = 0 if name in held else d.weight or 100
            _apply_headers(cw, d.headers)
            if meshexit.destination_outside(snapshot, d.destination, namespace):
                meshexit.strip_peer_headers(cw)
            action.weighted_clusters.clusters.append(cw)
    action.hash_policy.extend(hash_policies(snapshot, action))
    _set_timeout(action, http.timeout)
    retry = retry_policy(
        http.retries,
        snapshot.mesh_config.default_http_retry_policy,
        hash_policy=len(action.hash_policy) > 0,
    )
    if retry is not None:
        action.retry_policy.CopyFrom(retry)
    apply_rewrite(action, http.rewrite, _authority(http.headers))
    action.request_mirror_policies.extend(mirror_policies(snapshot, http, namespace, port))


def _routes(
    snapshot: MeshSnapshot,
    vs: VirtualServiceSpec,
    namespace: str,
    port: Port,
    proxy: Proxy,
    *,
    empty: frozenset[str],
    needs: set[str],
) -> list[rc.Route]:
    out: list[rc.Route] = []
    for http in vs.http:
        matches: Sequence[HTTPMatchRequest | None] = http.match or [None]
        for m in matches:
            if m is not None and not _applies(m, port, proxy):
                continue
            route = rc.Route(name=http.name or (m.name if m else ""), match=_route_match(m))
            _action(snapshot, http, namespace, port, route, empty=empty, needs=needs)
            out.append(route)
    return out


def _default_route(snapshot: MeshSnapshot, service: Service, port: Port) -> rc.Route:
    route = rc.Route(name="default", match=rc.RouteMatch(prefix="/"))
    route.route.cluster = outbound_cluster(port.number, "", service.hostname)
    if meshexit.outside(service):
        meshexit.strip_peer_headers(route)
    route.route.hash_policy.extend(hash_policies(snapshot, route.route))
    _set_timeout(route.route, None)
    retry = retry_policy(
        None,
        snapshot.mesh_config.default_http_retry_policy,
        hash_policy=len(route.route.hash_policy) > 0,
    )
    if retry is not None:
        route.route.retry_policy.CopyFrom(retry)
    return route


def _default_port(service: Service) -> Port | None:
    http = [p for p in service.ports if p.is_http]
    return next((p for p in http if p.number == 80), http[0] if http else None)


def _names(service: Service, proxy: Proxy) -> list[str]:
    names = short_names(service.hostname)
    if service.namespace != proxy.namespace:
        # short names resolve in the caller's namespace; only qualified ones cross namespaces
        names = [n for n in names if "." in n]
    return [*names, *service.addresses]


def route_refs(config: route_pb2.RouteConfiguration) -> frozenset[str]:
    return frozenset().union(*(_vhost_refs(vh) for vh in config.virtual_hosts))


def _vhost_refs(vh: rc.VirtualHost) -> frozenset[str]:
    refs: set[str] = set()
    for r in vh.routes:
        if r.route.cluster:
            refs.add(r.route.cluster)
        refs.update(cw.name for cw in r.route.weighted_clusters.clusters)
        refs.update(m.cluster for m in r.route.request_mirror_policies)
    return frozenset(refs)


# A VirtualHost serialized as a RouteConfiguration field, the clusters it routes to, and those
# of them it relies on having endpoints (emptydest.py)
Vhost = tuple[bytes, frozenset[str], frozenset[str]]
# (service, port, domains) of each virtual host of a namespace's table, in order
Plan = list[tuple[Service, Port, tuple[str, ...]]]


class VhostCache:
    """Virtual hosts built and serialized once, shared by every route table that holds them.

    A service's virtual host is the same in every namespace's table that names it by the same
    domains, so a thousand services in ten namespaces cost about a thousand virtual hosts, not
    ten thousand. Keys hold what a virtual host depends on beyond the snapshot's other routing
    inputs (services, DestinationRules, mesh config): its service, port, domains and
    VirtualService, and the proxy's namespace and labels when some rule matches on them. A new
    snapshot whose only routing change is VirtualServices takes over `earlier`'s entries
    (see ConfigGenerator), so editing one VirtualService rebuilds only its virtual hosts.
    """

    def __init__(self, earlier: VhostCache | None = None) -> None:
        # by value (the keys are small and made afresh), one generation: what `earlier` built
        # is found again, and only what this generation asks for is kept for the next
        self._memo: Memo[Vhost] = (
            earlier._memo.successor() if earlier is not None else Memo(identity=False)
        )
        # which virtual hosts a table has depends on services, not on VirtualServices
        self.plans: dict[tuple[str, frozenset[str] | None], Plan] = (
            earlier.plans if earlier is not None else {}
        )

    @property
    def entries(self) -> dict[tuple[object, ...], Vhost]:
        """The virtual hosts this generation's tables hold, by key."""
        return self._memo.current()

    def get(self, key: tuple[object, ...], make: Callable[[set[str]], rc.VirtualHost]) -> Vhost:
        def build() -> Vhost:
            needs: set[str] = set()
            vh = make(needs)
            body = protowire.field(2, vh.SerializeToString(deterministic=True))
            return (body, _vhost_refs(vh), frozenset(needs))

        return self._memo.get(key, build)

    def plan(
        self, namespace: str, visible: frozenset[str] | None, make: Callable[[], Plan]
    ) -> Plan:
        found = self.plans.get((namespace, visible))
        if found is None:
            found = self.plans[(namespace, visible)] = make()
        return found


def _plan(
    snapshot: MeshSnapshot, proxy: Proxy, visible: frozenset[str] | None
) -> Iterator[tuple[Service, Port, tuple[str, ...]]]:
    """(service, port, domains) of every virtual host of the table (depends on the proxy's
    namespace only)."""
    claimed: set[str] = set()
    for service in snapshot.services.values():
        if visible is not None and service.hostname not in visible:
            continue
        default = _default_port(service)
        for port in service.ports:
            if not port.is_http:
                continue
            domains: list[str] = []
            for name in _names(service, proxy):
                candidates = [f"{name}:{port.number}"] + ([name] if port is default else [])
                domains += [d for d in candidates if d not in claimed]
            if not domains:
                continue
            claimed.update(domains)
            # (a plan outlives endpoint changes: it must not hold the endpoints of its time)
            yield service.without_endpoints, port, tuple(domains)


def _virtual_host(
    snapshot: MeshSnapshot,
    proxy: Proxy,
    service: Service,
    port: Port,
    needs: set[str],
    *,
    domains: tuple[str, ...],
    vs: Resource | None,
    empty: frozenset[str],
) -> rc.VirtualHost:
    if vs is not None and isinstance(vs.spec, VirtualServiceSpec):
        routes = _routes(
            snapshot, vs.spec, vs.meta.namespace, port, proxy, empty=empty, needs=needs
        )
    else:
        # _default_route adds the hash policy (its retry policy depends on it)
        routes = [_default_route(snapshot, service, port)]
    return rc.VirtualHost(name=f"{service.hostname}:{port.number}", domains=domains, routes=routes)


def outbound_routes(
    snapshot: MeshSnapshot,
    proxy: Proxy,
    visible: frozenset[str] | None = None,
    cache: VhostCache | None = None,
    source: tuple[object, ...] = (),
    *,
    empty: frozenset[str] = frozenset(),
) -> PreparedResource:
    """The sidecar's outbound route table (named ``outbound_http``), with virtual hosts for
    the services in `visible` (all when None; see scope.py). `source`: what of the proxy the
    VirtualServices match on (namespace and labels; empty when no rule does). `empty`: the
    clusters of weighted destinations without endpoints (emptydest.py)."""
    cache = cache if cache is not None else VhostCache()
    parts = [protowire.text(1, OUTBOUND_ROUTE)]
    refs: list[frozenset[str]] = []
    needs: list[frozenset[str]] = []
    filters: set[str] = set()
    plan = cache.plan(proxy.namespace, visible, lambda: list(_plan(snapshot, proxy, visible)))
    for service, port, domains in plan:
        vs_res = snapshot.vs_by_host.get(service.hostname)
        vs = vs_res[0] if vs_res else None
        if vs is not None:
            filters |= policy_filters(vs)
        # (a virtual host depends on emptiness only through its VirtualService's routes)
        own_empty = empty & _weighted_clusters(snapshot, vs) if empty and vs else frozenset()
        body, names, relies = cache.get(
            (source, service.hostname, port.number, domains, vs, own_empty),
            functools.partial(
                _virtual_host,
                snapshot,
                proxy,
                service,
                port,
                domains=domains,
                vs=vs,
                empty=own_empty,
            ),
        )
        parts.append(body)
        refs.append(names)
        if relies:
            needs.append(relies)
    # the `*` host: unknown hosts pass through (ALLOW_ANY) or get 502 (REGISTRY_ONLY)
    for vh in outbound_policy.catch_all(snapshot, proxy):
        parts.append(protowire.field(2, vh.SerializeToString(deterministic=True)))
        refs.append(_vhost_refs(vh))
        filters.update(name for r in vh.routes for name in r.typed_per_filter_config)
    # validate_clusters = false (field 7, a BoolValue holding the default: an empty message)
    parts.append(protowire.field(7, b""))
    return prepare_serialized(
        OUTBOUND_ROUTE,
        ROUTE_TYPE,
        b"".join(parts),
        frozenset().union(*refs),
        needs_endpoints=frozenset().union(*needs),
        route_filters=frozenset(filters),
    )


def _weighted_clusters(snapshot: MeshSnapshot, vs: Resource) -> frozenset[str]:
    """Every cluster a weighted route of `vs` may name (any port of the destination)."""
    if not isinstance(vs.spec, VirtualServiceSpec):
        return frozenset()
    out: set[str] = set()
    for http in vs.spec.http:
        if sum(1 for d in http.route if d.weight > 0) < 2:
            continue
        for d in http.route:
            host = snapshot.resolve(d.destination.host, vs.meta.namespace)
            target = snapshot.services.get(host)
            for p in target.ports if target is not None else ():
                out.add(outbound_cluster(p.number, d.destination.subset, host))
    return frozenset(out)


def build_route(
    snapshot: MeshSnapshot,
    http: HTTPRoute,
    namespace: str,
    port: Port,
    m: HTTPMatchRequest | None,
    *,
    empty: frozenset[str] = frozenset(),
    needs: set[str] | None = None,
) -> rc.Route:
    """One Envoy route for match `m` of `http` (a VirtualService in `namespace`), for callers
    that decide applicability themselves (gateways, see generate/gateway.py)."""
    route = rc.Route(name=http.name or (m.name if m else ""), match=_route_match(m))
    _action(snapshot, http, namespace, port, route, empty=empty, needs=needs)
    return route


def virtual_host(
    snapshot: MeshSnapshot,
    proxy: Proxy,
    service: Service,
    port: Port,
    domains: tuple[str, ...],
) -> rc.VirtualHost:
    """The virtual host a sidecar in `proxy`'s place would get for (service, port), under
    `domains`: for callers that shape it further (proxyless gRPC, generate/proxyless.py)."""
    vs_res = snapshot.vs_by_host.get(service.hostname)
    return _virtual_host(
        snapshot,
        proxy,
        service,
        port,
        set(),
        domains=domains,
        vs=vs_res[0] if vs_res else None,
        empty=frozenset(),
    )
