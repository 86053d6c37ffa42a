"""Route shaping for proxyless gRPC: the sidecar's routes, cut down to what gRPC's xDS client
reads (gRFC A28 routing, A31 timeouts, A33 fault injection, A44 retries, A42 ring hash).

The routes themselves come from routes.py, so a VirtualService means the same thing to a
gRPC client as to a sidecar wherever gRPC can honour it. What changes:

* timeouts: gRPC ignores `RouteAction.timeout`; it reads `max_stream_duration`
  (`max_stream_duration`, capped by `grpc_timeout_header_max`), so the route's timeout moves
  there (A31). The client's own deadline still applies when it is shorter.
* retries: gRPC retries on gRPC status names only (`cancelled`, `deadline-exceeded`,
  `internal`, `resource-exhausted`, `unavailable`) and reads `num_retries` (at most 4 retries:
  gRPC caps attempts at 5) and `retry_back_off`; the rest of Istio's policy (HTTP codes,
  connect-failure, per-try timeout, host predicates) has no gRPC meaning and is left out. A
  policy with none of those conditions is dropped (A44).
* fault injection: the per-route `HTTPFault` is sent as itself, not in the `FilterConfig`
  wrapper a sidecar's routes use to turn on a disabled filter; the listener's fault filter is
  enabled with an empty config, which injects nothing until a route's config replaces it (A33).
* what gRPC ignores is not sent (header rewrites, mirrors, URL/authority rewrites, CORS), so a
  config dump shows what the client does; hash policies keep their `header` kind only (A42).
"""

from __future__ import annotations

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.http.fault.v3 import fault_pb2

from shoal.generate.faults import FAULT_FILTER

# The retry conditions gRPC's xDS client understands (gRFC A44), in Envoy's spelling.
GRPC_RETRY_ON = ("cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable")
# gRPC caps an RPC at 5 attempts (MaxAttempts in A6/A44)
MAX_RETRIES = 4


def grpc_retry(policy: rc.RetryPolicy) -> rc.RetryPolicy | None:
    """`policy` as gRPC reads it, or None when nothing of it applies to gRPC."""
    conditions = [c.strip() for c in policy.retry_on.split(",") if c.strip() in GRPC_RETRY_ON]
    if not conditions or policy.num_retries.value <= 0:
        return None
    out = rc.RetryPolicy(retry_on=",".join(conditions))
    out.num_retries.value = min(policy.num_retries.value, MAX_RETRIES)
    if policy.HasField("retry_back_off"):
        out.retry_back_off.CopyFrom(policy.retry_back_off)
    return out


def _timeout(action: rc.RouteAction) -> None:
    nanos = action.timeout.ToNanoseconds()
    action.ClearField("timeout")
    action.ClearField("max_grpc_timeout")
    if nanos > 0:  # Istio: no timeout unless the VirtualService sets one
        action.max_stream_duration.max_stream_duration.FromNanoseconds(nanos)
        action.max_stream_duration.grpc_timeout_header_max.FromNanoseconds(nanos)


def _fault(route: rc.Route) -> None:
    """Keep the fault filter's per-route config only, unwrapped from its FilterConfig."""
    wrapped = route.typed_per_filter_config.get(FAULT_FILTER)
    route.ClearField("typed_per_filter_config")
    if wrapped is None:
        return
    holder = rc.FilterConfig()
    wrapped.Unpack(holder)
    fault = fault_pb2.HTTPFault()
    holder.config.Unpack(fault)
    route.typed_per_filter_config[FAULT_FILTER].Pack(fault)


def _strip_headers(target: rc.Route | rc.WeightedCluster.ClusterWeight) -> None:
    for name in (
        "request_headers_to_add",
        "request_headers_to_remove",
        "response_headers_to_add",
        "response_headers_to_remove",
    ):
        target.ClearField(name)


def grpc_route(route: rc.Route) -> rc.Route:
    """A sidecar route shaped for gRPC's xDS client (a copy; `route` is left as it was)."""
    out = rc.Route()
    out.CopyFrom(route)
    _fault(out)
    _strip_headers(out)
    out.ClearField("metadata")
    if not out.HasField("route"):
        # redirect / direct_response: gRPC fails RPCs matching it with UNAVAILABLE
        return out
    action = out.route
    _timeout(action)
    if action.HasField("retry_policy"):
        retry = grpc_retry(action.retry_policy)
        action.ClearField("retry_policy")
        if retry is not None:
            action.retry_policy.CopyFrom(retry)
    keep = [h for h in action.hash_policy if h.HasField("header")]
    action.ClearField("hash_policy")
    action.hash_policy.extend(keep)
    for name in (
        "request_mirror_policies",
        "prefix_rewrite",
        "regex_rewrite",
        "host_rewrite_literal",
        "auto_host_rewrite",
        "host_rewrite_header",
        "host_rewrite_path_regex",
        "path_rewrite_policy",
    ):
        action.ClearField(name)
    for cw in action.weighted_clusters.clusters:
        _strip_headers(cw)
    return out


def grpc_virtual_host(vh: rc.VirtualHost) -> rc.VirtualHost:
    """Every route of `vh` shaped for gRPC (routes gRPC cannot match stay: it skips those
    with query-parameter matchers, A28, as a sidecar would never match them for gRPC)."""
    out = rc.VirtualHost(name=vh.name, domains=vh.domains)
    out.routes.extend(grpc_route(r) for r in vh.routes)
    return out
