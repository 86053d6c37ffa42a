"""DestinationRule resilience policies through a real Envoy: connection-pool limits, outlier
ejection, the retry budget, connect and idle timeouts. Each test first measures the same
traffic without the policy, through the same sidecar, so the difference is the policy's.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from harness.controlplane import ControlPlane
from harness.drmesh import DrMesh
from harness.faulty import FaultyBackend, blackhole, burst
from harness.load import fire
from harness.mesh import HOST, Mesh
from harness.wait import stays_true, wait_until

pytestmark = pytest.mark.envoy


@pytest.fixture
def dr_mesh(mesh: Mesh, control_plane_factory: Callable[..., ControlPlane]) -> DrMesh:
    return DrMesh(mesh, control_plane_factory)


def test_connection_pool_overflow_answers_503_overloaded(dr_mesh: DrMesh) -> None:
    with FaultyBackend("slow", delay=0.3) as slow:
        dr_mesh.start({"slow": slow.port})
        baseline = burst(dr_mesh.port, HOST, workers=10, requests_each=2)
        assert baseline["status:200"] == 20 and baseline["overloaded"] == 0, baseline

        dr_mesh.apply(
            """trafficPolicy:
  connectionPool:
    tcp: {maxConnections: 1}
    http: {http1MaxPendingRequests: 1}"""
        )
        limited = burst(dr_mesh.port, HOST, workers=10, requests_each=2)
        # one request on the connection, one waiting for it: the others overflow at once
        assert limited["overloaded"] >= 10, limited
        assert limited["status:503"] == limited["overloaded"], limited
        assert limited["status:200"] >= 2, limited
        assert dr_mesh.stat("upstream_rq_pending_overflow") == limited["overloaded"]


def test_outlier_detection_ejects_the_failing_replica(dr_mesh: DrMesh) -> None:
    # 500 is not retried by the mesh's default retry policy, so failures reach the caller.
    with FaultyBackend("good") as good, FaultyBackend("bad", status=500) as bad:
        dr_mesh.start({"good": good.port, "bad": bad.port})
        baseline = fire(dr_mesh.port, HOST, 100)
        assert 25 <= baseline["status:500"] <= 75, baseline

        dr_mesh.apply(
            """trafficPolicy:
  outlierDetection:
    consecutive5xxErrors: 3
    interval: 1s
    baseEjectionTime: 30s
    maxEjectionPercent: 100"""
        )
        applied = time.monotonic()
        wait_until(
            lambda: (
                fire(dr_mesh.port, HOST, 5)["status:200"] == 5
                and dr_mesh.stat("outlier_detection.ejections_enforced_total") >= 1
            ),
            1.0 + 2.0,  # the configured interval, plus slack for a loaded machine
            interval=0.02,
            what="the failing replica to be ejected",
        )
        assert time.monotonic() - applied < 3.0
        after = fire(dr_mesh.port, HOST, 200)
        assert after["status:200"] >= 198, after
        assert dr_mesh.stat("outlier_detection.ejections_active") == 1
        assert bad.requests > 0


def test_retry_budget_caps_retries_in_an_outage(dr_mesh: DrMesh) -> None:
    # Every replica answers 503, which the mesh's default policy retries twice.
    with (
        FaultyBackend("a", status=503, delay=0.05) as a,
        FaultyBackend("b", status=503, delay=0.05) as b,
    ):
        dr_mesh.start({"a": a.port, "b": b.port})
        n = 12 * 5
        before = dr_mesh.stat("upstream_rq_retry")
        baseline = burst(dr_mesh.port, HOST, workers=12, requests_each=5)
        assert baseline["status:503"] == n, baseline
        retries = dr_mesh.stat("upstream_rq_retry") - before
        assert retries >= 1.5 * n, retries  # ~2 per request: unlimited by default
        assert dr_mesh.stat("upstream_rq_retry_overflow") == 0

        dr_mesh.apply("trafficPolicy: {retryBudget: {percent: 20, minRetryConcurrency: 1}}")
        before = dr_mesh.stat("upstream_rq_retry")
        budgeted = burst(dr_mesh.port, HOST, workers=12, requests_each=5)
        assert budgeted["status:503"] == n, budgeted
        retries = dr_mesh.stat("upstream_rq_retry") - before
        overflow = dr_mesh.stat("upstream_rq_retry_overflow")
        # At most 20 % of the requests in flight may be retries (and at least one).
        assert retries <= 0.2 * n + 12 * 0.2 + 1, (retries, overflow)
        assert overflow > 0, (retries, overflow)


def test_connect_timeout_gives_up_on_a_black_hole(dr_mesh: DrMesh) -> None:
    with blackhole() as port:
        dr_mesh.start({"hole": port})
        # Istio's default connect timeout is 10 s: the caller's 2 s run out first.
        baseline = fire(dr_mesh.port, HOST, 1, timeout=2.0)
        assert baseline["error:TimeoutError"] == 1, baseline

        dr_mesh.apply("trafficPolicy: {connectionPool: {tcp: {connectTimeout: 200ms}}}")
        started = time.monotonic()
        counts = fire(dr_mesh.port, HOST, 1, timeout=5.0)
        elapsed = time.monotonic() - started
        assert counts["status:503"] == 1, counts
        # three attempts (the default retry policy retries connect failures twice)
        assert elapsed < 2.0, elapsed
        assert dr_mesh.stat("upstream_cx_connect_timeout") >= 1


def test_idle_timeout_closes_idle_upstream_connections(dr_mesh: DrMesh) -> None:
    dr_mesh.start({"v1": dr_mesh.mesh.backends["v1"].port})
    assert fire(dr_mesh.port, HOST, 3)["status:200"] == 3
    assert stays_true(lambda: dr_mesh.stat("upstream_cx_idle_timeout") == 0, 1.0)

    dr_mesh.apply("trafficPolicy: {connectionPool: {http: {idleTimeout: 300ms}}}")
    assert fire(dr_mesh.port, HOST, 3)["status:200"] == 3
    wait_until(
        lambda: dr_mesh.stat("upstream_cx_idle_timeout") >= 1,
        3.0,
        what="the idle upstream connection to be closed",
    )
    assert fire(dr_mesh.port, HOST, 3)["status:200"] == 3
