"""The traffic generator's bookkeeping: tree walk, percentiles, summaries (pure)."""

from __future__ import annotations

from shoal.samples.stats import (
    Outcome,
    failed_calls_in,
    format_summary,
    percentile,
    summarize,
    versions_in,
)

TREE = {
    "service": "frontend",
    "version": "v1",
    "upstreams": [
        {
            "service": "reviews",
            "version": "v2",
            "upstreams": [{"service": "ratings", "version": "v1", "upstreams": []}],
        },
        {"service": "ratings", "version": "v1", "upstreams": []},
        {"url": "http://details/", "error": "ClientConnectorError: refused"},
        {"url": "http://x/", "status": 503, "error": "HTTP 503", "body": {"service": "x"}},
    ],
}


def test_versions_in_walks_the_tree_depth_first() -> None:
    assert versions_in(TREE) == ["frontend:v1", "reviews:v2", "ratings:v1", "ratings:v1"]


def test_versions_in_tolerates_anything() -> None:
    assert versions_in(None) == []
    assert versions_in("no healthy upstream") == []
    assert versions_in({"service": "a"}) == []
    assert versions_in({"service": "a", "version": "v1", "upstreams": "junk"}) == ["a:v1"]


def test_failed_calls_in() -> None:
    assert failed_calls_in(TREE) == 2
    assert failed_calls_in({"service": "a", "version": "v1", "upstreams": []}) == 0
    assert failed_calls_in(None) == 0


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([5.0], 99) == 5.0
    assert percentile([], 50) == 0.0


def test_summarize_and_format() -> None:
    outcomes = [
        Outcome(200, 0.010, ("frontend:v1", "reviews:v1")),
        Outcome(200, 0.020, ("frontend:v1", "reviews:v2", "ratings:v1"), failed_calls=1),
        Outcome(503, 0.005, ("frontend:v1",)),
        Outcome(None, 1.0, error="timeout"),
    ]
    s = summarize(outcomes)
    assert (s.requests, s.ok, s.degraded) == (4, 2, 1)
    assert s.success_pct == 50.0
    assert s.p50 == 0.010
    assert s.p99 == 1.0
    assert s.versions == {"frontend:v1": 3, "ratings:v1": 1, "reviews:v1": 1, "reviews:v2": 1}
    assert s.errors == {"503": 1, "timeout": 1}
    assert format_summary(s, "5s") == (
        "[5s] 4 req 50.0% ok (1 degraded) p50 10.0ms p99 1000.0ms | errors 503=1 timeout=1"
        " | frontend:v1=3 ratings:v1=1 reviews:v1=1 reviews:v2=1"
    )
    assert s.to_json()["success_pct"] == 50.0


def test_empty_summary() -> None:
    s = summarize([])
    assert format_summary(s, "total") == "[total] 0 req 0.0% ok p50 0.0ms p99 0.0ms"
