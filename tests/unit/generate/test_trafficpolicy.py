"""DestinationRule traffic policies -> Envoy cluster and route fields (pure, no network)."""

from __future__ import annotations

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2 as hpo
from google.protobuf import text_format

from shoal.api import InvalidConfigError, parse_text
from shoal.generate.clusterpolicy import HTTP_OPTIONS, MAX_UINT32
from shoal.generate.prepared import unpack

from .meshcfg import generator, sidecar

HOST = "reviews.default.svc.cluster.local"
SE = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}, {number: 9080, name: grpc, protocol: GRPC}]
  endpoints:
  - {address: 10.0.0.1, labels: {version: v1}}
  - {address: 10.0.0.2, labels: {version: v2}}
"""


def _dr(spec: str) -> str:
    head = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
    head += "metadata: {name: reviews, namespace: default}\nspec:\n  host: reviews\n"
    return head + spec


def cluster(spec: str, port: int = 80, subset: str = "") -> cluster_pb2.Cluster:
    gen = generator(SE, _dr(spec))
    out = unpack(gen.clusters()[f"outbound|{port}|{subset}|{HOST}"], cluster_pb2.Cluster())
    assert isinstance(out, cluster_pb2.Cluster)
    return out


def http_options(c: cluster_pb2.Cluster) -> hpo.HttpProtocolOptions:
    opts = hpo.HttpProtocolOptions()
    assert c.typed_extension_protocol_options[HTTP_OPTIONS].Unpack(opts)
    return opts


def routes(*texts: str) -> route_pb2.RouteConfiguration:
    res = generator(SE, *texts).routes(sidecar())["outbound_http"]
    out = unpack(res, route_pb2.RouteConfiguration())
    assert isinstance(out, route_pb2.RouteConfiguration)
    return out


def test_defaults_match_istio() -> None:
    c = cluster("  subsets: []\n")
    assert c.lb_policy == cluster_pb2.Cluster.LEAST_REQUEST
    assert c.connect_timeout.seconds == 10
    (t,) = c.circuit_breakers.thresholds
    assert t.max_connections.value == t.max_pending_requests.value == MAX_UINT32
    assert t.max_requests.value == t.max_retries.value == MAX_UINT32
    assert not t.HasField("retry_budget")
    assert not c.HasField("outlier_detection")
    assert HTTP_OPTIONS not in c.typed_extension_protocol_options


@pytest.mark.parametrize(
    ("lb", "policy"),
    [
        ("simple: ROUND_ROBIN", cluster_pb2.Cluster.ROUND_ROBIN),
        ("simple: RANDOM", cluster_pb2.Cluster.RANDOM),
        ("simple: LEAST_REQUEST", cluster_pb2.Cluster.LEAST_REQUEST),
        ("consistentHash: {httpHeaderName: x-user}", cluster_pb2.Cluster.RING_HASH),
        ("consistentHash: {useSourceIp: true, maglev: {}}", cluster_pb2.Cluster.MAGLEV),
    ],
)
def test_load_balancer_policy(lb: str, policy: int) -> None:
    assert cluster(f"  trafficPolicy: {{loadBalancer: {{{lb}}}}}\n").lb_policy == policy


def test_ring_hash_and_maglev_sizes() -> None:
    ring = cluster(
        "  trafficPolicy: {loadBalancer: {consistentHash: "
        "{httpHeaderName: x, ringHash: {minimumRingSize: 2048}}}}\n"
    )
    assert ring.ring_hash_lb_config.minimum_ring_size.value == 2048
    default = cluster("  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x}}}\n")
    assert default.ring_hash_lb_config.minimum_ring_size.value == 1024
    maglev = cluster(
        "  trafficPolicy: {loadBalancer: {consistentHash: "
        "{httpHeaderName: x, maglev: {tableSize: 65537}}}}\n"
    )
    assert maglev.maglev_lb_config.table_size.value == 65537


def test_connection_pool() -> None:
    c = cluster(
        """  trafficPolicy:
    connectionPool:
      tcp:
        maxConnections: 100
        connectTimeout: 30ms
        tcpKeepalive: {probes: 4, time: 7200s, interval: 75s}
        maxConnectionDuration: 1h
      http:
        http1MaxPendingRequests: 7
        http2MaxRequests: 1000
        maxRequestsPerConnection: 10
        maxRetries: 3
        idleTimeout: 30s
"""
    )
    (t,) = c.circuit_breakers.thresholds
    assert (t.max_connections.value, t.max_pending_requests.value) == (100, 7)
    assert (t.max_requests.value, t.max_retries.value) == (1000, 3)
    assert t.track_remaining
    assert c.connect_timeout.ToMilliseconds() == 30
    ka = c.upstream_connection_options.tcp_keepalive
    assert (ka.keepalive_probes.value, ka.keepalive_time.value, ka.keepalive_interval.value) == (
        4,
        7200,
        75,
    )
    common = http_options(c).common_http_protocol_options
    assert common.idle_timeout.seconds == 30
    assert common.max_requests_per_connection.value == 10
    assert common.max_connection_duration.seconds == 3600
    assert http_options(c).explicit_http_config.HasField("http_protocol_options")


def test_tcp_idle_timeout_is_the_http_fallback_and_h2_options() -> None:
    c = cluster("  trafficPolicy: {connectionPool: {tcp: {idleTimeout: 5s}}}\n")
    assert http_options(c).common_http_protocol_options.idle_timeout.seconds == 5
    up = cluster("  trafficPolicy: {connectionPool: {http: {h2UpgradePolicy: UPGRADE}}}\n")
    assert http_options(up).explicit_http_config.HasField("http2_protocol_options")
    grpc = cluster(
        "  trafficPolicy: {connectionPool: {http: {maxConcurrentStreams: 9}}}\n", port=9080
    )
    h2 = http_options(grpc).explicit_http_config.http2_protocol_options
    assert h2.max_concurrent_streams.value == 9


def test_outlier_detection_enforces_configured_kinds_only() -> None:
    c = cluster(
        """  trafficPolicy:
    outlierDetection:
      consecutive5xxErrors: 7
      consecutiveGatewayErrors: 0
      interval: 5m
      baseEjectionTime: 15m
      maxEjectionPercent: 50
"""
    )
    od = c.outlier_detection
    assert (od.consecutive_5xx.value, od.enforcing_consecutive_5xx.value) == (7, 100)
    assert od.HasField("enforcing_consecutive_gateway_failure")
    assert od.enforcing_consecutive_gateway_failure.value == 0
    assert od.HasField("enforcing_success_rate") and od.enforcing_success_rate.value == 0
    assert (od.interval.seconds, od.base_ejection_time.seconds) == (300, 900)
    assert od.max_ejection_percent.value == 50
    assert not od.split_external_local_origin_errors
    assert c.common_lb_config.HasField("healthy_panic_threshold")
    assert c.common_lb_config.healthy_panic_threshold.value == 0


def test_outlier_detection_local_origin_and_min_health() -> None:
    c = cluster(
        """  trafficPolicy:
    outlierDetection:
      splitExternalLocalOriginErrors: true
      consecutiveLocalOriginFailures: 3
      minHealthPercent: 25
"""
    )
    od = c.outlier_detection
    assert od.split_external_local_origin_errors
    assert od.consecutive_local_origin_failure.value == 3
    assert od.enforcing_consecutive_local_origin_failure.value == 100
    assert c.common_lb_config.healthy_panic_threshold.value == 25


def test_retry_budget_and_its_defaults() -> None:
    c = cluster("  trafficPolicy: {retryBudget: {percent: 25.5, minRetryConcurrency: 5}}\n")
    rb = c.circuit_breakers.thresholds[0].retry_budget
    assert (rb.budget_percent.value, rb.min_retry_concurrency.value) == (25.5, 5)
    d = cluster("  trafficPolicy: {retryBudget: {}}\n").circuit_breakers.thresholds[0]
    assert (d.retry_budget.budget_percent.value, d.retry_budget.min_retry_concurrency.value) == (
        20,
        3,
    )


OVERRIDES = """  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool: {tcp: {maxConnections: 10}}
    outlierDetection: {consecutive5xxErrors: 3}
    retryBudget: {percent: 10}
    portLevelSettings:
    - port: {number: 9080}
      loadBalancer: {simple: RANDOM}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      connectionPool: {tcp: {maxConnections: 20}}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      portLevelSettings:
      - port: {number: 80}
        outlierDetection: {consecutive5xxErrors: 9}
"""


def test_subset_overrides_service_component_by_component() -> None:
    v1 = cluster(OVERRIDES, subset="v1")
    assert v1.circuit_breakers.thresholds[0].max_connections.value == 20
    assert v1.lb_policy == cluster_pb2.Cluster.ROUND_ROBIN  # inherited
    assert v1.outlier_detection.consecutive_5xx.value == 3  # inherited
    assert v1.circuit_breakers.thresholds[0].retry_budget.budget_percent.value == 10


def test_port_level_settings_replace_without_inheriting() -> None:
    grpc = cluster(OVERRIDES, port=9080)
    assert grpc.lb_policy == cluster_pb2.Cluster.RANDOM
    # connectionPool and outlierDetection are not inherited by the port-level entry
    assert grpc.circuit_breakers.thresholds[0].max_connections.value == MAX_UINT32
    assert not grpc.HasField("outlier_detection")
    # the retry budget is not a port-level setting: it stays
    assert grpc.circuit_breakers.thresholds[0].retry_budget.budget_percent.value == 10
    http = cluster(OVERRIDES, port=80)
    assert http.lb_policy == cluster_pb2.Cluster.ROUND_ROBIN
    # a subset's port-level entry beats everything for that port
    v2 = cluster(OVERRIDES, port=80, subset="v2")
    assert v2.outlier_detection.consecutive_5xx.value == 9
    assert v2.lb_policy == cluster_pb2.Cluster.LEAST_REQUEST
    assert v2.circuit_breakers.thresholds[0].max_connections.value == MAX_UINT32
    assert cluster(OVERRIDES, port=9080, subset="v2").lb_policy == cluster_pb2.Cluster.RANDOM


VS = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1, port: {number: 80}}, weight: 50}
    - {destination: {host: reviews, subset: v2, port: {number: 80}}, weight: 50}
"""


def _hash(route_config: route_pb2.RouteConfiguration) -> list[str]:
    vh = next(v for v in route_config.virtual_hosts if v.name == f"{HOST}:80")
    return [
        text_format.MessageToString(h, as_one_line=True)
        for r in vh.routes
        for h in r.route.hash_policy
    ]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("httpHeaderName: x-user", 'header { header_name: "x-user" }'),
        ("httpQueryParameterName: user", 'query_parameter { name: "user" }'),
        ("useSourceIp: true", "connection_properties { source_ip: true }"),
        ("httpCookie: {name: user}", 'cookie { name: "user" }'),
    ],
)
def test_default_route_hashes_on_the_configured_key(key: str, expected: str) -> None:
    dr = _dr(f"  trafficPolicy: {{loadBalancer: {{consistentHash: {{{key}}}}}}}\n")
    assert _hash(routes(dr)) == [expected]


def test_cookie_ttl_path_and_attributes() -> None:
    dr = _dr(
        "  trafficPolicy: {loadBalancer: {consistentHash: {httpCookie: "
        "{name: s, path: /, ttl: 0s, attributes: [{name: SameSite, value: Strict}]}}}}\n"
    )
    rc = routes(dr)
    vh = next(v for v in rc.virtual_hosts if v.name == f"{HOST}:80")
    cookie = vh.routes[0].route.hash_policy[0].cookie
    assert (cookie.name, cookie.path) == ("s", "/")
    assert cookie.HasField("ttl") and cookie.ttl.seconds == 0
    assert [(a.name, a.value) for a in cookie.attributes] == [("SameSite", "Strict")]


def test_split_route_takes_the_first_subset_with_a_hash_key() -> None:
    dr = _dr(
        """  subsets:
  - {name: v1, labels: {version: v1}}
  - name: v2
    labels: {version: v2}
    trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-v2}}}
"""
    )
    assert _hash(routes(dr, VS)) == ['header { header_name: "x-v2" }']


def test_no_hash_policy_without_consistent_hash() -> None:
    assert _hash(routes(_dr("  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n"))) == []


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        ("loadBalancer: {simple: RANDOM, consistentHash: {httpHeaderName: x}}", "consistentHash"),
        ("loadBalancer: {consistentHash: {httpHeaderName: x, useSourceIp: true}}", "useSourceIp"),
        ("loadBalancer: {consistentHash: {ringHash: {}, maglev: {}}}", "maglev"),
        ("loadBalancer: {consistentHash: {maglev: {tableSize: 1000}}}", "tableSize"),
        ("connectionPool: {tcp: {connectTimeout: 0s}}", "connectTimeout"),
        ("connectionPool: {tcp: {maxConnections: -1}}", "maxConnections"),
        ("outlierDetection: {maxEjectionPercent: 101}", "maxEjectionPercent"),
        ("outlierDetection: {interval: 0.1ms}", "interval"),
        ("retryBudget: {percent: 120}", "percent"),
        ("retryBudget: {budgetInterval: 1s}", "budgetInterval"),
        ("tls: {mode: MUTUAL}", "clientCertificate"),
    ],
)
def test_invalid_policies_name_the_field(policy: str, field: str) -> None:
    with pytest.raises(InvalidConfigError) as info:
        parse_text(_dr(f"  trafficPolicy: {{{policy}}}\n"))
    assert any(e.field.endswith(field) for e in info.value.errors), info.value.errors
