"""Golden signals from two scrapes: rates, success, PromQL-style quantiles, edges."""

from __future__ import annotations

import math

import pytest

from shoal.telemetry.discovery import ProxyTarget, target_groups
from shoal.telemetry.golden import edges, quantile, stats
from shoal.telemetry.promtext import Sample, parse

LE = ["0.5", "1", "5", "10", "25", "50", "100", "+Inf"]


def _series(
    workload: str, code: str, n: int, le_counts: dict[str, int], reporter: str = "destination"
) -> list[Sample]:
    labels = {
        "reporter": reporter,
        "destination_workload": workload,
        "destination_workload_namespace": "default",
        "destination_service_name": workload,
        "destination_service_namespace": "default",
        "response_code": code,
        "source_workload": "frontend",
        "source_workload_namespace": "default",
        "source_principal": "spiffe://cluster.local/ns/default/sa/frontend",
        "destination_principal": f"spiffe://cluster.local/ns/default/sa/{workload}",
    }
    out = [Sample("istio_requests_total", labels, n)]
    out += [
        Sample("istio_request_duration_milliseconds_bucket", {**labels, "le": le}, c)
        for le, c in le_counts.items()
    ]
    return out


def test_quantile_interpolates_within_the_bucket_like_promql() -> None:
    # 100 observations: 50 in (10, 25], 50 in (25, 50]
    buckets = {10.0: 0, 25.0: 50, 50.0: 100, math.inf: 100}
    assert quantile(0.5, buckets) == 25
    assert quantile(0.99, buckets) == pytest.approx(25 + 25 * 0.98)
    assert quantile(0.5, {10.0: 0, math.inf: 0}) is None
    # everything above the last finite bound: that bound, as histogram_quantile answers
    assert quantile(0.5, {10.0: 0, math.inf: 4}) == 10


def test_stats_over_a_window_count_only_what_grew() -> None:
    before = _series("reviews", "200", 10, dict.fromkeys(LE, 10))
    after = [
        *_series("reviews", "200", 50, {**dict.fromkeys(LE[:4], 10), **dict.fromkeys(LE[4:], 50)}),
        *_series("reviews", "503", 10, {**dict.fromkeys(LE[:6], 0), **dict.fromkeys(LE[6:], 10)}),
    ]
    (row,) = stats(before, after, 10.0, {("default", "reviews"): (2, 2)})
    assert (row.name, row.meshed, row.replicas) == ("reviews", 2, 2)
    assert row.requests == 50 and row.rps == 5.0
    assert row.success == pytest.approx(0.8)
    # 40 new answers in (10, 25], 10 in (50, 100]
    assert row.p50 == pytest.approx(10 + 15 * (25 / 40))
    assert row.p99 is not None and 50 < row.p99 <= 100
    assert row.tcp_connections is None


def test_idle_workloads_still_get_a_row_and_services_read_the_client_side() -> None:
    rows = stats([], [], 10.0, {("default", "ratings"): (1, 1)})
    assert [(r.name, r.success, r.rps, r.p99) for r in rows] == [("ratings", None, 0.0, None)]
    client = _series("reviews", "200", 4, dict.fromkeys(LE, 4), reporter="source")
    (svc,) = stats([], client, 2.0, {}, by_service=True)
    assert (svc.name, svc.rps, svc.success) == ("reviews", 2.0, 1.0)


def test_edges_carry_the_proven_identities() -> None:
    samples = _series("reviews", "200", 3, {}, reporter="source")
    plain = [
        Sample(
            "istio_requests_total",
            {**s.labels, "destination_workload": "legacy", "destination_principal": "unknown"},
            s.value,
        )
        for s in samples
    ]
    found = edges([*samples, *plain])
    assert [(e.src, e.dst, e.secured, e.requests) for e in found] == [
        ("frontend", "legacy", False, 3),
        ("frontend", "reviews", True, 3),
    ]
    assert found[1].server_id == "spiffe://cluster.local/ns/default/sa/reviews"


def test_parse_reads_prometheus_text() -> None:
    text = '# TYPE istio_requests_total counter\nistio_requests_total{reporter="source"} 3\n'
    assert parse(text) == [Sample("istio_requests_total", {"reporter": "source"}, 3.0)]


def test_discovery_target_groups() -> None:
    target = ProxyTarget(
        node="sidecar~127.0.0.1~reviews-0.default~default.svc.cluster.local",
        host="127.0.0.1",
        port=15090,
        namespace="default",
        workload="reviews",
        labels={"app": "reviews", "version": "v1", "other": "x"},
        kind="sidecar",
    )
    assert target_groups([target]) == [
        {
            "targets": ["127.0.0.1:15090"],
            "labels": {
                "__metrics_path__": "/stats/prometheus",
                "namespace": "default",
                "pod": "reviews-0",
                "workload": "reviews",
                "proxy_type": "sidecar",
                "app": "reviews",
                "version": "v1",
            },
        }
    ]
