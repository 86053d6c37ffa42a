"""The dashboard's bounded history: the rate window, points per workload, and its limits."""

from __future__ import annotations

import pytest

from shoal.telemetry.history import History
from shoal.telemetry.promtext import Sample


def _scrape(workload: str, served: float, *, extra: int = 0) -> list[Sample]:
    labels = {
        "reporter": "destination",
        "destination_workload": workload,
        "destination_workload_namespace": "default",
        "source_workload": "frontend",
        "source_workload_namespace": "default",
        "response_code": "200",
    }
    out = [Sample("istio_requests_total", labels, served)]
    out += [Sample("istio_request_duration_milliseconds_bucket", {**labels, "le": le}, served)
            for le in ("10", "+Inf")]  # fmt: skip
    # series the dashboard does not read: not kept
    out += [Sample("envoy_cluster_upstream_rq", {"n": str(i)}, 1) for i in range(extra)]
    return out


def test_rates_are_over_the_window_not_between_two_scrapes() -> None:
    h = History(window_s=10.0)
    for t in range(0, 21, 2):  # 2 requests a second, scraped every 2 s
        h.add(float(t), _scrape("ratings", 2.0 * t))
    g = h.graph()
    assert g.window_s == 10.0
    (node,) = g.nodes
    assert node.inbound.rps == pytest.approx(2.0)
    points = h.series("default/ratings")
    assert [p.t for p in points] == [float(t) for t in range(2, 21, 2)]
    assert all(p.rps == pytest.approx(2.0) and p.success == 1.0 for p in points)


def test_one_scrape_gives_a_graph_without_rates_and_no_points() -> None:
    h = History()
    assert h.graph().nodes == () and h.latest is None
    h.add(5.0, _scrape("ratings", 3))
    assert h.latest == 5.0
    assert h.graph().window_s is None
    assert h.series("default/ratings") == ()


def test_memory_is_bounded() -> None:
    h = History(window_s=4.0, points=5, max_workloads=3)
    for t in range(100):
        h.add(float(t), [*_scrape(f"w{t % 7}", t, extra=50), *_scrape("steady", t)])
    # scrapes: those within the window (and one at its edge), without the unread series
    assert len(h._scrapes) <= 6
    assert all(s.name.startswith("istio_") for scrape in h._scrapes for s in scrape.samples)
    assert len(h._series) == 3
    assert len(h.series("default/steady")) == 5  # seen every time: never dropped
    assert h.series("default/w1") and h.series("default/w0")  # the two seen last
    assert h.series("default/w2") == ()  # not seen lately: dropped first


def test_after_a_pause_rates_start_afresh_and_the_points_stay() -> None:
    h = History(window_s=6.0)
    for t in range(0, 13, 1):
        h.add(float(t), _scrape("ratings", 2.0 * t))
    kept = len(h.series("default/ratings"))
    # nobody watched for 10 minutes, then a page is back: no rate over those 10 minutes
    h.add(612.0, _scrape("ratings", 5000))
    assert h.graph().window_s is None
    assert len(h.series("default/ratings")) == kept
    h.add(613.0, _scrape("ratings", 5010))
    assert h.graph().nodes[0].inbound.rps == pytest.approx(10.0)
