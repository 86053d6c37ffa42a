"""`shoal up` end to end: the demo through real sidecars, live routing edits, replica failure.

Each test runs a whole mesh as processes (control plane in `shoal up`, and per replica an app,
a `shoal agent` and its Envoy) on ports of its own, and reads its state from the control
plane's `/debug/workloads` and `/debug/syncz`. Every process a test started is stopped at
teardown, whether the test passed or not (see harness/up.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.adminhttp import get_json, request
from harness.configdir import ConfigDir
from harness.load import SteadyLoad
from harness.meshyaml import backend_and_client
from harness.up import REPO, ShoalUp, envoy_cluster_hosts, get_via_proxy, is_alive
from harness.upruns import call_failed, finish
from harness.wait import wait_until

pytestmark = pytest.mark.envoy

DEMO = REPO / "examples" / "demo"
DEMO_REPLICAS = 6  # frontend, reviews-v1, reviews-v2, ratings x2, traffic

UpFactory = Callable[..., ShoalUp]


@pytest.fixture
def shoal_up(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[UpFactory]:
    started: list[ShoalUp] = []

    def make(config_dir: Path | None = None, *, via_make: bool = False) -> ShoalUp:
        up = ShoalUp(config_dir, tmp_path, via_make=via_make, name=f"up-{len(started)}")
        started.append(up)  # before start: a run that fails to start is still stopped
        return up.start()

    yield make
    outlived = {name: procs for name, procs in finish(started, request).items() if procs}
    if outlived and not call_failed(request):
        pytest.fail(f"processes outlived shoal up: {outlived}")


def _replica(workloads: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [r for r in workloads if r["replica"] == name]
    assert len(found) == 1, f"replica {name} not in {[r['replica'] for r in workloads]}"
    return found[0]


def _frontend(port: int, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """One request to http://frontend/ through the sidecar whose outbound port is ``port``."""
    status, body = get_via_proxy(port, "http://frontend/", headers=headers)
    assert status == 200, f"frontend answered {status}: {body}"
    assert isinstance(body, dict), body
    return body


def _upstreams(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The answers of the services ``body``'s service called, by service name."""
    out = {}
    for answer in body["upstreams"]:
        assert "error" not in answer, f"{body['service']} failed to call upstream: {answer}"
        out[answer["service"]] = answer
    return out


# -- 1. make demo -----------------------------------------------------------------------------


def test_make_demo_serves_through_two_sidecars_per_hop_and_leaves_nothing(
    shoal_up: UpFactory,
) -> None:
    up = shoal_up(via_make=True)
    workloads = up.wait_ready(DEMO_REPLICAS)
    assert {r["replica"] for r in workloads} == {
        "frontend-0",
        "reviews-v1-0",
        "reviews-v2-0",
        "ratings-0",
        "ratings-1",
        "traffic-0",
    }
    traffic = _replica(workloads, "traffic-0")["ports"]["outbound"]

    reviews_versions: Counter[str] = Counter()
    ratings_replicas: set[str] = set()
    for _ in range(40):
        body = _frontend(traffic)
        assert (body["service"], body["replica"]) == ("frontend", "frontend-0")
        # two sidecars per hop: the caller's outbound, then the callee's inbound
        assert body["via"] == "outbound traffic, inbound frontend"
        called = _upstreams(body)
        assert set(called) == {"reviews", "ratings"}, body
        reviews, ratings = called["reviews"], called["ratings"]
        version = reviews["version"]
        reviews_versions[version] += 1
        assert reviews["replica"] == f"reviews-{version}-0"
        assert reviews["via"] == f"outbound frontend, inbound reviews-{version}"
        assert ratings["via"] == "outbound frontend, inbound ratings"
        ratings_replicas.add(ratings["replica"])
        if len(ratings_replicas) == 2 and reviews_versions["v1"] >= 5:
            break
    # both ratings replicas serve (frontend's sidecar balances them); 90 % of reviews is v1
    assert ratings_replicas == {"ratings-0", "ratings-1"}
    assert reviews_versions["v1"] >= 5, reviews_versions

    # user jason always gets reviews v2, which calls ratings itself: three hops, six sidecars
    for _ in range(3):
        body = _frontend(traffic, {"end-user": "jason"})
        reviews = _upstreams(body)["reviews"]
        assert (reviews["version"], reviews["via"]) == (
            "v2",
            "outbound frontend, inbound reviews-v2",
        )
        stars = _upstreams(reviews)["ratings"]
        assert stars["via"] == "outbound reviews-v2, inbound ratings"
        assert stars["headers"]["end-user"] == "jason"

    # the control plane serves the dashboard under make demo too (test_dashboard.py drives it)
    status, page = request("GET", up.admin_url + "/dashboard/")
    assert status == 200 and b'id="graph"' in page
    overview = get_json(up.admin_url + "/dashboard/api/overview")
    assert {r["workload"] for r in overview["sync"]["rows"]} == {
        "frontend", "reviews-v1", "reviews-v2", "ratings", "traffic"
    }  # fmt: skip

    # Ctrl-C: apps, then sidecars, then the control plane; nothing may remain
    workloads = up.workloads()
    pids = {r[k] for r in workloads for k in ("app_pid", "sidecar_pid")}
    ours = {proc.pid: proc for proc in up.seen.values() if proc.pid in pids}
    assert set(ours) == pids, "every app and sidecar pid is a descendant of make"
    assert len(up.bootstraps) == DEMO_REPLICAS, f"one Envoy per sidecar: {up.bootstraps}"
    up.interrupt(signal.SIGINT)
    up.wait_exit(timeout=30)

    leftovers = up.leftovers()
    assert not leftovers, "left running after shoal up stopped:\n" + "\n".join(leftovers)
    assert not [pid for pid, proc in ours.items() if is_alive(proc.key)]
    assert not [b for b in up.bootstraps if Path(b).parent.exists()], "bootstrap dirs remain"
    assert "shoal up: stopped" in up.log_text()


# -- 2. a routing edit is live, nothing restarts ----------------------------------------------

ALL_TO_V2 = """\
# edited by test_up: everyone gets reviews v2
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: default
spec:
  hosts: [reviews]
  http:
  - name: everyone-v2
    route:
    - destination: {host: reviews, subset: v2}
"""


def _processes(workloads: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    return {
        r["replica"]: (r["app_pid"], r["sidecar_pid"], r["restarts"], r["state"]) for r in workloads
    }


def test_editing_the_routing_file_moves_reviews_to_v2_without_restarts(
    shoal_up: UpFactory, tmp_path: Path
) -> None:
    demo = tmp_path / "demo"
    shutil.copytree(DEMO, demo)
    up = shoal_up(demo)
    before = up.wait_ready(DEMO_REPLICAS)
    traffic = _replica(before, "traffic-0")["ports"]["outbound"]

    def reviews_versions(n: int) -> Counter[str]:
        return Counter(_upstreams(_frontend(traffic))["reviews"]["version"] for _ in range(n))

    assert reviews_versions(20)["v1"] > 0  # 90/10 as shipped

    ConfigDir(demo).write("reviews-routing.yaml", ALL_TO_V2)
    edited = time.monotonic()
    last: list[Counter[str]] = [Counter()]

    def only_v2() -> bool:
        last[0] = reviews_versions(20)
        return set(last[0]) == {"v2"}

    wait_until(
        only_v2,
        5.0,
        interval=0.05,
        what="20 requests in a row answered by reviews v2",
        describe=lambda: f"last versions: {last[0]}",
    )
    took = time.monotonic() - edited
    assert reviews_versions(40) == Counter({"v2": 40})
    print(f"routing edit live through the frontend after {took * 1000:.0f} ms")

    config = get_json(up.admin_url + "/debug/config")
    assert config["errors"] == []
    # nothing restarted: same app and sidecar processes, still running
    assert _processes(up.workloads()) == _processes(before)


# -- 3. a replica dies under load -------------------------------------------------------------

TWO_REPLICAS = backend_and_client()
BACKEND_CLUSTER = "outbound|80||backend.default.svc.cluster.local"
RESTART_BUDGET_S = 20.0


def test_killing_one_of_two_replicas_under_load_fails_no_request(
    shoal_up: UpFactory, tmp_path: Path
) -> None:
    folder = ConfigDir(tmp_path / "two")
    folder.write("mesh.yaml", TWO_REPLICAS)
    up = shoal_up(folder.path)
    workloads = up.wait_ready(3)
    client = _replica(workloads, "client-0")["ports"]
    victim = _replica(workloads, "backend-1")
    victim_host = f"127.0.0.1:{victim['ports']['inbound']}"
    other_host = f"127.0.0.1:{_replica(workloads, 'backend-0')['ports']['inbound']}"

    def hosts() -> dict[str, dict[str, int]]:
        return envoy_cluster_hosts(client["admin"]).get(BACKEND_CLUSTER, {})

    assert set(hosts()) == {victim_host, other_host}

    load = SteadyLoad(client["outbound"], "backend", rps=100, workers=4).start()
    load_started = time.monotonic()
    try:
        # both replicas take traffic before one of them dies
        wait_until(
            lambda: all(h.get("rq_success", 0) > 10 for h in hosts().values()),
            5.0,
            what="both backend replicas serving",
            describe=lambda: f"{hosts()}\n{load.snapshot().summary()}",
        )
        os.kill(victim["app_pid"], signal.SIGKILL)
        killed = time.monotonic()

        wait_until(
            lambda: victim_host not in hosts(),
            1.0,
            interval=0.01,
            what="the killed replica removed from the client sidecar's endpoints",
            describe=lambda: f"{hosts()}\n{up.replica('backend-1')}",
        )
        removed = time.monotonic() - killed
        assert set(hosts()) == {other_host}

        def back() -> dict[str, Any] | None:
            now = up.replica("backend-1")
            fresh = now["app_pid"] not in (None, victim["app_pid"])
            return now if fresh and now["registered"] and now["state"] == "running" else None

        # the restart is the app's backoff (0.5 s) plus a Python start-up of the sample app,
        # ~2 s alone on a loaded 2-core machine: a budget for load, not a speed claim
        revived = wait_until(
            back, RESTART_BUDGET_S, interval=0.05, what="backend-1 restarted and registered again"
        )
        assert revived["restarts"] == 1 and revived["sidecar_pid"] == victim["sidecar_pid"]
        # ... and serving again through the client's sidecar
        wait_until(
            lambda: hosts().get(victim_host, {}).get("rq_success", 0) > 5,
            RESTART_BUDGET_S,
            what="the restarted replica serving the client again",
            describe=lambda: f"{hosts()}\n{load.snapshot().summary()}",
        )
        returned = time.monotonic() - killed
    finally:
        result = load.stop()
    rate = result.total / (time.monotonic() - load_started)
    print(
        f"replica removed from endpoints after {removed * 1000:.0f} ms, serving again after "
        f"{returned:.1f} s; {result.summary()}; {rate:.0f} rps"
    )
    assert result.failures == [], result.summary()
    assert rate >= 50, f"load ran at {rate:.0f} rps, below the 50 rps the test promises"
    assert up.replica("backend-0")["restarts"] == 0
