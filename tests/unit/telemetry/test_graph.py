"""The dashboard's service graph from two scrapes: edges, rates, health, mTLS, layout."""

from __future__ import annotations

import pytest

from shoal.telemetry.graph import COLUMN_W, Proxy, Signals, build, layout
from shoal.telemetry.promtext import Sample

LE = ["5", "10", "25", "50", "100", "+Inf"]
ID = "spiffe://cluster.local/ns/default/sa/"


def _requests(
    src: str,
    dst: str,
    code: str,
    n: float,
    *,
    reporter: str = "source",
    mtls: bool = True,
    proxy: str = "a",
    slow: bool = False,
) -> list[Sample]:
    """One series of `n` requests src -> dst and its histogram (all within 10 ms, or 50)."""
    labels = {
        "reporter": reporter,
        "source_workload": src,
        "source_workload_namespace": "default" if src != "unknown" else "unknown",
        "source_principal": ID + src if mtls and src != "unknown" else "unknown",
        "destination_workload": dst,
        "destination_workload_namespace": "default",
        "destination_service_name": dst.split("-", maxsplit=1)[0],
        "destination_service_namespace": "default",
        "destination_principal": ID + dst if mtls else "unknown",
        "connection_security_policy": "mutual_tls"
        if mtls and reporter == "destination"
        else "unknown",
        "response_code": code,
        "__proxy__": proxy,
    }
    bound = 50.0 if slow else 10.0
    buckets = [
        Sample("istio_request_duration_milliseconds_bucket", {**labels, "le": le}, n)
        if le == "+Inf" or float(le) >= bound
        else Sample("istio_request_duration_milliseconds_bucket", {**labels, "le": le}, 0)
        for le in LE
    ]
    return [Sample("istio_requests_total", labels, n), *buckets]


def test_edges_carry_rate_success_p99_and_mtls_over_the_window() -> None:
    before = _requests("frontend", "ratings", "200", 100)
    after = [
        *_requests("frontend", "ratings", "200", 180),
        *_requests("frontend", "ratings", "500", 20),
    ]
    g = build(before, after, 10.0, [Proxy("default", "frontend"), Proxy("default", "ratings")])
    (edge,) = g.edges
    assert (edge.src, edge.dst, edge.mtls) == ("default/frontend", "default/ratings", True)
    assert edge.signals.requests == 100 and edge.signals.rps == 10.0
    assert edge.signals.success == pytest.approx(0.8)
    assert edge.signals.health == "failing"
    assert edge.signals.p99 is not None and 5 < edge.signals.p99 <= 10
    assert g.window_s == 10.0
    assert [n.id for n in g.nodes] == ["default/frontend", "default/ratings"]
    ratings = g.nodes[1]
    assert (ratings.replicas, ratings.services, ratings.kind) == (1, ("ratings",), "workload")


@pytest.mark.parametrize(
    ("ok", "failed", "health"),
    [(100, 0, "ok"), (99, 1, "degraded"), (91, 9, "degraded"), (90, 10, "failing"), (0, 0, "idle")],
)
def test_health_follows_kialis_thresholds(ok: int, failed: int, health: str) -> None:
    success = ok / (ok + failed) if ok + failed else None
    assert Signals(requests=ok + failed, rps=1.0, success=success).health == health


def test_no_rates_from_one_scrape_and_idle_edges_stay_drawn() -> None:
    first = build(None, _requests("frontend", "ratings", "200", 7), None)
    assert first.window_s is None
    assert first.edges[0].signals.requests == 7 and first.edges[0].signals.rps is None
    assert first.edges[0].signals.health == "idle"
    # nothing new between the two scrapes: the edge stays, idle
    same = _requests("frontend", "ratings", "200", 7)
    later = build(same, same, 10.0)
    assert [(e.src, e.dst, e.signals.health) for e in later.edges] == [
        ("default/frontend", "default/ratings", "idle")
    ]


def test_traffic_from_outside_the_mesh_comes_from_the_callees_sidecar() -> None:
    before: list[Sample] = []
    after = [
        # the callee's view of a caller without a sidecar: the only report of it
        *_requests("unknown", "frontend", "200", 10, reporter="destination", mtls=False),
        # mesh-internal traffic seen by the callee: counted once, from the caller's side
        *_requests("traffic", "frontend", "200", 30, reporter="destination"),
        *_requests("traffic", "frontend", "200", 30, proxy="b"),
    ]
    g = build(before, after, 10.0)
    edges = {(e.src, e.dst): e for e in g.edges}
    assert set(edges) == {("unknown", "default/frontend"), ("default/traffic", "default/frontend")}
    assert edges[("unknown", "default/frontend")].mtls is False
    assert edges[("default/traffic", "default/frontend")].signals.requests == 30
    assert edges[("default/traffic", "default/frontend")].mtls is True
    nodes = {n.id: n for n in g.nodes}
    assert nodes["unknown"].kind == "external"
    # the node's own signals: what its sidecar served, every caller
    assert nodes["default/frontend"].inbound.requests == 40
    assert g.nodes[0].id == "unknown"  # outside callers first


def test_a_plaintext_request_takes_the_lock_away() -> None:
    after = [
        *_requests("frontend", "ratings", "200", 5),
        *_requests("frontend", "ratings", "200", 1, mtls=False, proxy="b"),
    ]
    assert build(None, after, None).edges[0].mtls is False


def test_a_call_to_a_service_without_endpoints_is_an_edge_to_the_service() -> None:
    labels = _requests("frontend", "unknown", "503", 4)
    g = build([], labels, 5.0)
    assert [(e.src, e.dst) for e in g.edges] == [("default/frontend", "svc:default/unknown")]
    assert {n.kind for n in g.nodes} == {"workload", "service"}
    # once nothing calls it any more, it is gone (a workload-to-workload edge would stay)
    assert build(labels, labels, 5.0).edges == ()


def test_a_proxy_restart_counts_its_counters_from_zero() -> None:
    before = _requests("frontend", "ratings", "200", 500)
    after = _requests("frontend", "ratings", "200", 20)
    assert build(before, after, 10.0).edges[0].signals.requests == 20


def test_gateways_and_idle_workloads_are_nodes_too() -> None:
    g = build([], [], 10.0, [Proxy("edge", "ingress", "router"), Proxy("default", "a")] * 2)
    assert [(n.id, n.kind, n.replicas) for n in g.nodes] == [
        ("default/a", "workload", 2),
        ("edge/ingress", "gateway", 2),
    ]
    assert all(n.inbound.health == "idle" for n in g.nodes)


def test_layout_puts_callees_right_of_their_callers_and_survives_cycles() -> None:
    ids = ["a", "b", "c", "d"]
    places = layout(ids, [("a", "b"), ("b", "c"), ("a", "c"), ("c", "b"), ("d", "d")])
    column = {i: round((x - places["a"][0]) / COLUMN_W) for i, (x, _y) in places.items()}
    assert column == {"a": 0, "b": 1, "c": 2, "d": 0}
    # within a column, one row each
    assert places["a"][1] != places["d"][1]
    # a graph that is one cycle still gets a place for everyone
    ring = layout(["x", "y"], [("x", "y"), ("y", "x")])
    assert set(ring) == {"x", "y"} and ring["x"] != ring["y"]


def test_json_names_what_the_page_reads() -> None:
    g = build([], _requests("frontend", "ratings", "200", 3), 3.0).to_json()
    edge = g["edges"][0]  # type: ignore[index]
    assert set(edge) == {"src", "dst", "mtls", "requests", "rps", "success", "p99", "health"}
    node = g["nodes"][0]  # type: ignore[index]
    assert {"id", "name", "kind", "replicas", "services", "x", "y", "health"} <= set(node)
