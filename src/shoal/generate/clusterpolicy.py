"""A DestinationRule traffic policy applied to one outbound Envoy cluster, as Istio does it.

Mapping (Istio's pilot/pkg/networking/core/cluster_traffic_policy.go is the reference):

* loadBalancer.simple -> `lb_policy`; consistentHash -> RING_HASH (default, with
  `minimum_ring_size` 1024) or MAGLEV (`table_size`). The hash key itself is a route
  setting (`RouteAction.hash_policy`, see hashpolicy.py).
* connectionPool -> `circuit_breakers.thresholds[0]` (max_connections, max_pending_requests,
  max_requests, max_retries; every unset one is 2^32-1, Istio's default, so Envoy's own
  limit of 3 parallel retries never bites), `connect_timeout`,
  `upstream_connection_options.tcp_keepalive`, and the HttpProtocolOptions extension
  (idle_timeout, max_requests_per_connection, max_connection_duration, HTTP/2 upgrade and
  max_concurrent_streams).
* outlierDetection -> `outlier_detection`: the configured consecutive error kinds are
  enforced at 100 %, success-rate ejection is off, and `minHealthPercent` becomes the
  cluster's `healthy_panic_threshold` (0 unless set, like Istio).
* retryBudget -> `circuit_breakers.thresholds[0].retry_budget` (20 % and 3 by default).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2, outlier_detection_pb2
from envoy.config.core.v3 import protocol_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2 as hpo
from google.protobuf import any_pb2, duration_pb2

from shoal.api.trafficpolicy import (
    ConnectionPoolSettings,
    LoadBalancerSettings,
    OutlierDetection,
    RetryBudget,
    TrafficPolicy,
)
from shoal.model import Port

HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
MAX_UINT32 = 2**32 - 1
DEFAULT_RING_SIZE = 1024  # Envoy's and Istio's default minimum ring size
DEFAULT_BUDGET_PERCENT = 20.0
DEFAULT_MIN_RETRY_CONCURRENCY = 3

_SIMPLE: Mapping[str, cluster_pb2.Cluster.LbPolicy.ValueType] = MappingProxyType(
    {
        "ROUND_ROBIN": cluster_pb2.Cluster.ROUND_ROBIN,
        "LEAST_REQUEST": cluster_pb2.Cluster.LEAST_REQUEST,
        "LEAST_CONN": cluster_pb2.Cluster.LEAST_REQUEST,
        "RANDOM": cluster_pb2.Cluster.RANDOM,
    }
)


def _duration(seconds: float) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromNanoseconds(round(seconds * 1e9))
    return out


def _load_balancer(cluster: cluster_pb2.Cluster, lb: LoadBalancerSettings | None) -> None:
    # Istio's default since 1.14: least request, which copes best with uneven backends.
    cluster.lb_policy = cluster_pb2.Cluster.LEAST_REQUEST
    if lb is None:
        return
    if lb.simple is not None and lb.simple in _SIMPLE:
        cluster.lb_policy = _SIMPLE[lb.simple]
    ch = lb.consistent_hash
    if ch is None:
        return
    if ch.maglev is not None:
        cluster.lb_policy = cluster_pb2.Cluster.MAGLEV
        if ch.maglev.table_size:
            cluster.maglev_lb_config.table_size.value = ch.maglev.table_size
        return
    cluster.lb_policy = cluster_pb2.Cluster.RING_HASH
    size = (ch.ring_hash.minimum_ring_size if ch.ring_hash else 0) or ch.minimum_ring_size
    cluster.ring_hash_lb_config.minimum_ring_size.value = size or DEFAULT_RING_SIZE


def _thresholds(
    pool: ConnectionPoolSettings | None, budget: RetryBudget | None
) -> circuit_breaker_pb2.CircuitBreakers.Thresholds:
    t = circuit_breaker_pb2.CircuitBreakers.Thresholds(track_remaining=True)
    http = pool.http if pool else None
    tcp = pool.tcp if pool else None
    t.max_connections.value = (tcp.max_connections if tcp else 0) or MAX_UINT32
    t.max_pending_requests.value = (http.http1_max_pending_requests if http else 0) or MAX_UINT32
    t.max_requests.value = (http.http2_max_requests if http else 0) or MAX_UINT32
    t.max_retries.value = (http.max_retries if http else 0) or MAX_UINT32
    if budget is not None:
        rb = t.retry_budget
        rb.budget_percent.value = (
            budget.percent if budget.percent is not None else DEFAULT_BUDGET_PERCENT
        )
        rb.min_retry_concurrency.value = (
            budget.min_retry_concurrency or DEFAULT_MIN_RETRY_CONCURRENCY
        )
    return t


def _tcp(cluster: cluster_pb2.Cluster, pool: ConnectionPoolSettings | None) -> None:
    tcp = pool.tcp if pool else None
    if tcp is None:
        return
    if tcp.connect_timeout is not None:
        cluster.connect_timeout.CopyFrom(_duration(tcp.connect_timeout))
    ka = tcp.tcp_keepalive
    if ka is not None:
        out = cluster.upstream_connection_options.tcp_keepalive
        out.SetInParent()  # SO_KEEPALIVE on, OS defaults for what is not given
        if ka.probes:
            out.keepalive_probes.value = ka.probes
        if ka.time is not None:
            out.keepalive_time.value = int(ka.time)
        if ka.interval is not None:
            out.keepalive_interval.value = int(ka.interval)


def _http_options(
    pool: ConnectionPoolSettings | None, http2: bool, *, mesh_h2: bool = False
) -> hpo.HttpProtocolOptions | None:
    http = pool.http if pool else None
    tcp = pool.tcp if pool else None
    upgrade = http.h2_upgrade_policy if http is not None else "DEFAULT"
    http2 = http2 or upgrade == "UPGRADE" or (mesh_h2 and upgrade != "DO_NOT_UPGRADE")
    common = protocol_pb2.HttpProtocolOptions()
    idle = http.idle_timeout if http and http.idle_timeout is not None else None
    if idle is None and tcp is not None:
        idle = tcp.idle_timeout
    if idle is not None:
        common.idle_timeout.CopyFrom(_duration(idle))
    if http and http.max_requests_per_connection:
        common.max_requests_per_connection.value = http.max_requests_per_connection
    if tcp and tcp.max_connection_duration is not None:
        common.max_connection_duration.CopyFrom(_duration(tcp.max_connection_duration))
    has_common = common.ByteSize() > 0
    if not http2 and not has_common:
        return None
    opts = hpo.HttpProtocolOptions()
    if has_common:
        opts.common_http_protocol_options.CopyFrom(common)
    if http2:
        h2 = opts.explicit_http_config.http2_protocol_options
        h2.SetInParent()
        if http and http.max_concurrent_streams:
            h2.max_concurrent_streams.value = http.max_concurrent_streams
    else:
        opts.explicit_http_config.http_protocol_options.SetInParent()
    return opts


def _outlier(cluster: cluster_pb2.Cluster, od: OutlierDetection | None) -> None:
    if od is None:
        return
    out = outlier_detection_pb2.OutlierDetection()
    out.enforcing_success_rate.value = 0
    if od.consecutive_5xx_errors is not None:
        out.consecutive_5xx.value = od.consecutive_5xx_errors
        out.enforcing_consecutive_5xx.value = 100 if od.consecutive_5xx_errors > 0 else 0
    if od.consecutive_gateway_errors is not None:
        out.consecutive_gateway_failure.value = od.consecutive_gateway_errors
        out.enforcing_consecutive_gateway_failure.value = (
            100 if od.consecutive_gateway_errors > 0 else 0
        )
    if od.interval is not None:
        out.interval.CopyFrom(_duration(od.interval))
    if od.base_ejection_time is not None:
        out.base_ejection_time.CopyFrom(_duration(od.base_ejection_time))
    if od.max_ejection_percent > 0:
        out.max_ejection_percent.value = od.max_ejection_percent
    if od.split_external_local_origin_errors:
        out.split_external_local_origin_errors = True
        if od.consecutive_local_origin_failures:
            out.consecutive_local_origin_failure.value = od.consecutive_local_origin_failures
            out.enforcing_consecutive_local_origin_failure.value = 100
        out.enforcing_local_origin_success_rate.value = 0
    cluster.outlier_detection.CopyFrom(out)
    # Istio disables the panic threshold (Envoy's default is 50 %) unless minHealthPercent
    # says otherwise: with two replicas, one ejected must not send traffic back to it.
    cluster.common_lb_config.healthy_panic_threshold.value = float(od.min_health_percent)


def apply_traffic_policy(
    cluster: cluster_pb2.Cluster,
    policy: TrafficPolicy | None,
    port: Port,
    *,
    mesh_h2: bool = False,
) -> None:
    """Set `cluster`'s load balancing, limits, timeouts and ejection from `policy`.

    `mesh_h2`: the cluster reaches sidecars over mesh mTLS (mtls.h2_to_sidecars), so HTTP
    travels as HTTP/2 unless `h2UpgradePolicy: DO_NOT_UPGRADE` says otherwise.

    `policy` is already merged for the cluster's port and subset (`policy_for`).
    """
    policy = policy or TrafficPolicy()
    _load_balancer(cluster, policy.load_balancer)
    pool = policy.connection_pool
    cluster.circuit_breakers.thresholds.append(_thresholds(pool, policy.retry_budget))
    _tcp(cluster, pool)
    opts = _http_options(pool, port.is_http2, mesh_h2=mesh_h2) if port.is_http else None
    if opts is not None:
        packed = any_pb2.Any()
        packed.Pack(opts)
        cluster.typed_extension_protocol_options[HTTP_OPTIONS].CopyFrom(packed)
    _outlier(cluster, policy.outlier_detection)
