"""The HTTP filter chains of a sidecar's listeners, in the order Envoy runs them.

Each concern that needs an HTTP filter (fault injection, CORS, rate limiting, authorization,
...) contributes it here, so listeners.py stays about addresses and ports.

Filters that act on some routes only (fault, CORS, the dynamic forward proxy of the catch-all)
sit in the outbound listener *disabled* (`HttpFilter.disabled`): Envoy does not even create
them for a request unless its route enables them, which the route does by wrapping its own
settings in a `FilterConfig` (`enabled_on_route`). So a request whose route asks for none of
them pays for none of them, and a VirtualService adding fault injection changes the route
table only: the listener stays the same and no connection is drained.
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


def outbound_http_filters(snapshot: MeshSnapshot, proxy: Proxy) -> list[hcm_pb2.HttpFilter]:
    """Filters on the caller's side (the outbound listener); the router is always last."""
    # CORS and fault injection are configured per route (generate/cors.py, faults.py); always
    # present, so a VirtualService change never changes (and drains) the listener, and
    # disabled unless a route turns them on (see above).
    return [
        http_filter(CORS_FILTER, cors_filter_config(), disabled=True),
        http_filter(FAULT_FILTER, fault_filter_config(), disabled=True),
        *outbound_policy.http_filters(snapshot, proxy),
        router(),
    ]


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
