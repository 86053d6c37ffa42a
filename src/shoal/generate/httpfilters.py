"""The HTTP filter chains of a sidecar's listeners, in the order Envoy runs them.

Each concern that needs an HTTP filter (fault injection, CORS, rate limiting, authorization,
...) contributes it here, so listeners.py stays about addresses and ports.

Filters that act on some routes only (fault, CORS, the dynamic forward proxy of the catch-all)
are in the outbound listener only while some route of the proxy's route table turns them on
(the table's `route_filters`, routes.py), and there *disabled* (`HttpFilter.disabled`): Envoy
does not even create them for a request unless its route enables them, which the route does
by wrapping its own settings in a `FilterConfig` (`enabled_on_route`). So a request whose
route asks for none of them pays for none of them, and a mesh without fault injection or CORS
has no such filter at all (each present filter still costs Envoy a per-request lookup of the
route's per-filter config: measured in benchmarks/overhead_bench.py --attribute).

The price: the first VirtualService with a `fault` (or `corsPolicy`) a proxy's route table
holds changes that proxy's outbound listener, and so does the last one going away. Envoy
replaces the listener and drains the old one's connections (shoal's Envoys drain in ~1 s):
requests in flight finish, kept-alive clients reconnect to the new listener. Until they
have, requests on old connections run the old chain (no fault injected yet). Envoy accepts a
route's per-filter config for a filter the listener lacks (it is unused), so the order in
which the listener and the route table arrive does not matter.
"""

from __future__ import annotations

from envoy.config.route.v3 import route_components_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import any_pb2
from google.protobuf.message import Message

from shoal.generate import authz, jwt, outbound_policy, ratelimit
from shoal.generate.cors import CORS_FILTER, cors_filter_config
from shoal.generate.faults import FAULT_FILTER, fault_filter_config
from shoal.model import MeshSnapshot, Proxy


def packed(message: Message) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(message)
    return out


def http_filter(name: str, config: Message, *, disabled: bool = False) -> hcm_pb2.HttpFilter:
    return hcm_pb2.HttpFilter(name=name, typed_config=packed(config), disabled=disabled)


def enabled_on_route(config: Message | None = None) -> any_pb2.Any:
    """A route's `typed_per_filter_config` value that turns a disabled filter on for that
    route, with `config` (the filter's per-route settings) if given."""
    wrapper = route_components_pb2.FilterConfig()
    if config is not None:
        wrapper.config.CopyFrom(packed(config))
    return packed(wrapper)


def router(*, respect_expected_rq_timeout: bool = False) -> hcm_pb2.HttpFilter:
    return http_filter(
        "envoy.filters.http.router",
        router_pb2.Router(respect_expected_rq_timeout=respect_expected_rq_timeout),
    )


# every filter a route of the outbound table may turn on (the default of `route_filters`)
ROUTE_FILTERS = frozenset({CORS_FILTER, FAULT_FILTER, outbound_policy.DFP_FILTER})


def outbound_http_filters(
    snapshot: MeshSnapshot, proxy: Proxy, route_filters: frozenset[str] = ROUTE_FILTERS
) -> list[hcm_pb2.HttpFilter]:
    """Filters on the caller's side (the outbound listener); the router is always last.

    `route_filters`: the filters some route of the proxy's table turns on (see above)."""
    out = []
    # CORS and fault injection are configured per route (generate/cors.py, faults.py)
    if CORS_FILTER in route_filters:
        out.append(http_filter(CORS_FILTER, cors_filter_config(), disabled=True))
    if FAULT_FILTER in route_filters:
        out.append(http_filter(FAULT_FILTER, fault_filter_config(), disabled=True))
    if outbound_policy.DFP_FILTER in route_filters:
        out.extend(outbound_policy.http_filters(snapshot, proxy))
    out.append(router())
    return out


def inbound_http_filters(snapshot: MeshSnapshot, proxy: Proxy) -> list[hcm_pb2.HttpFilter]:
    """Filters on the callee's side (the inbound listener); the router is always last."""
    # Deadlines: the caller's sidecar states the time left in x-envoy-expected-rq-timeout-ms;
    # the callee's sidecar gives up when it runs out instead of working for nobody.
    # Security first, in Istio's order: JWT (401 on a bad token), then RBAC (AUDIT, DENY,
    # ALLOW; 403), so refused requests cost the app nothing and spend no rate-limit tokens.
    return [
        *jwt.http_filters(snapshot, proxy),
        *authz.http_filters(snapshot, proxy),
        *ratelimit.http_filters(snapshot, proxy),
        router(respect_expected_rq_timeout=True),
    ]
