"""`shoal up --netns` end to end (issue 15 section 1): replicas as pods with transparent capture.

Each replica runs in its own network namespace on the run's bridge, its sidecar as UID 1337
behind Istio-style iptables rules, its app knowing nothing of the mesh: the app calls
`http://reviews:9080/` (the name from the pod's hosts file, the VIP captured into its
sidecar's 15001) with no HTTP_PROXY. A clean stop leaves no namespace, veth, bridge, hosts
file, state file or Envoy shared memory; a `kill -9` of `shoal up` leaves them all, and the
next run (or `shoal up --cleanup`) removes them. Needs root (fails, never skips, without).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.configdir import ConfigDir
from harness.netnsup import (
    http_from,
    left_behind,
    netns_args,
    pod_rules,
    pods_ready,
    require_root,
)
from harness.up import VENV_BIN, ShoalUp
from harness.wait import wait_until

pytestmark = pytest.mark.envoy

MESH = """
apiVersion: shoal.dev/v1alpha1
kind: LocalWorkload
metadata: {name: reviews, namespace: default}
spec:
  ports: [{number: 9080, name: http, protocol: HTTP}]
  labels: {app: reviews, version: v1}
  command: [python, -m, shoal.samples.service]
---
apiVersion: shoal.dev/v1alpha1
kind: LocalWorkload
metadata: {name: frontend, namespace: default}
spec:
  ports: [{number: 80, name: http, protocol: HTTP}]
  labels: {app: frontend, version: v1}
  command: [python, -m, shoal.samples.service, --upstreams, "http://reviews:9080/"]
"""

RATINGS = """
apiVersion: shoal.dev/v1alpha1
kind: LocalWorkload
metadata: {name: ratings, namespace: default}
spec:
  ports: [{number: 80, name: http, protocol: HTTP}]
  labels: {app: ratings, version: v1}
  command: [python, -m, shoal.samples.service]
"""

Factory = Callable[..., ShoalUp]


@pytest.fixture
def netns_up(tmp_path: Path) -> Iterator[Factory]:
    require_root()
    state = tmp_path / "state"
    started: list[ShoalUp] = []

    def make(text: str = MESH, *, name: str = "up") -> ShoalUp:
        folder = tmp_path / f"{name}-{len(started)}"
        ConfigDir(folder).write("mesh.yaml", text)
        up = ShoalUp(folder, tmp_path, name=f"{name}-{len(started)}", extra_args=netns_args(state))
        started.append(up)
        return up.start()

    try:
        yield make
    finally:
        for up in reversed(started):
            up.stop()
        # whatever a failed test left: the cleanup command removes it
        subprocess.run(
            [str(VENV_BIN / "shoal"), "up", "--cleanup", "--state-dir", str(state)],
            capture_output=True,
            timeout=60,
            check=False,
        )
        for up in started:
            assert left_behind(up.pid, state) == [], up.describe()


def test_apps_call_services_by_name_through_capture_and_a_stop_leaves_nothing(
    netns_up: Factory, tmp_path: Path
) -> None:
    up = netns_up()
    pods = pods_ready(up, 2)
    front, reviews = pods["frontend-0"], pods["reviews-0"]
    assert front["ip"] != reviews["ip"] and front["netns"] != reviews["netns"]
    # the app knows nothing of the mesh
    env = Path(f"/proc/{front['app_pid']}/environ").read_bytes().split(b"\0")
    assert not [e for e in env if e.lower().startswith((b"http_proxy=", b"https_proxy="))]
    # a client in the frontend pod, by short name: its sidecar, then the frontend's, whose
    # app calls http://reviews:9080/ through its own sidecar to the reviews pod
    answer = http_from(front["netns"], "http://frontend/")[0]
    assert answer["status"] == 200, answer
    body = answer["body"]
    assert body["replica"] == "frontend-0"
    upstream = body["upstreams"][0]
    assert upstream["replica"] == "reviews-0", upstream
    assert upstream["via"] == "outbound frontend, inbound reviews", upstream
    # the full name and the VIP reach the same service
    full = http_from(front["netns"], "http://reviews.default.svc.cluster.local:9080/")[0]
    assert full["status"] == 200 and full["body"]["service"] == "reviews", full
    rules = pod_rules(reviews["netns"])
    assert "--uid-owner 1337" in rules and "--to-ports 15006" in rules, rules
    hosts = Path(f"/etc/netns/{front['netns']}/hosts").read_text()
    assert "reviews reviews.default reviews.default.svc reviews.default.svc.cluster.local" in hosts
    # a service added while the mesh runs: its name reaches the pods already running
    assert up.config_dir is not None
    ConfigDir(up.config_dir).write("ratings.yaml", RATINGS)
    pods_ready(up, 3)
    added = wait_until(
        lambda: (a := http_from(front["netns"], "http://ratings/")[0])["status"] == 200 and a,
        30,
        what="the frontend pod to reach the new ratings service by name",
    )
    assert added["body"]["replica"] == "ratings-0", added
    assert up.stop() == []
    assert left_behind(up.pid, tmp_path / "state") == []


def test_after_kill_9_the_next_start_and_the_cleanup_command_remove_what_was_left(
    netns_up: Factory, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    first = netns_up(name="killed")
    pods_ready(first, 2)
    first.track()
    os.kill(first.pid, signal.SIGKILL)
    first.wait_exit(10)
    left = left_behind(first.pid, state)
    assert any(x.startswith("netns ") for x in left) and any(x.startswith("link ") for x in left)
    assert any(x.startswith("state ") for x in left), left

    second = netns_up(name="next")
    pods_ready(second, 2)
    assert left_behind(first.pid, state) == []  # swept at start
    second.track()
    os.kill(second.pid, signal.SIGKILL)
    second.wait_exit(10)
    assert left_behind(second.pid, state) != []
    done = subprocess.run(
        [str(VENV_BIN / "shoal"), "up", "--cleanup", "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert f"shoal-{second.pid % 100000}-reviews-0" in done.stdout, done.stdout
    assert left_behind(second.pid, state) == []


class _NetnsDemo(ShoalUp):
    """`make demo NETNS=1`, the README's way to run the demo as pods."""

    @property
    def argv(self) -> list[str]:
        return [*super().argv, "NETNS=1"]


def test_make_demo_netns_serves_the_demo_through_pods(tmp_path: Path) -> None:
    require_root()
    state = tmp_path / "state"
    args = [a for a in netns_args(state) if a != "--netns"]  # NETNS=1 adds it
    up = _NetnsDemo(None, tmp_path, via_make=True, name="demo", extra_args=args)
    try:
        up.start()
        pods = pods_ready(up, 6, timeout=120)
        answer = http_from(pods["traffic-0"]["netns"], "http://frontend/")[0]
        assert answer["status"] == 200, answer
        called = {u["service"] for u in answer["body"]["upstreams"]}
        assert called == {"reviews", "ratings"}, answer
        assert up.stop() == []
    finally:
        up.stop()
        subprocess.run(
            [str(VENV_BIN / "shoal"), "up", "--cleanup", "--state-dir", str(state)],
            capture_output=True,
            timeout=60,
            check=False,
        )
    assert left_behind(up.pid, state) == []
