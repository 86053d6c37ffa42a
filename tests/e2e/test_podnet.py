"""Pods in network namespaces for `shoal up --netns` (issue 15, section 1 groundwork).

Two pods on a run's bridge reach each other and the host by address, a pod resolves names
from its /etc/netns hosts file; `close()` leaves no namespace, link, bridge or state file.
A run killed with SIGKILL (no exit hook) leaves everything behind, and the next run's
`open()` removes it, including a process still running inside the dead run's pod.
Needs root and `ip` (CI runs as root).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import procs
from shoal.runtime.podnet import PodNetwork

pytestmark = pytest.mark.envoy

ORIGDST = str(Path(__file__).resolve().parents[1] / "harness" / "origdst.py")


def _subnet() -> str:
    return f"10.{random.randrange(200, 250)}.{random.randrange(1, 250)}"


def _links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout


def _netns() -> str:
    return subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def root() -> None:
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.fail("pod network tests need root and ip (CI runs as root)")


@pytest.fixture
def network(root: None, tmp_path: Path) -> Iterator[PodNetwork]:
    net = PodNetwork(tmp_path / "state", subnet=_subnet(), tag=f"t{os.getpid() % 10000}")
    try:
        yield net.open()
    finally:
        net.close()
        assert net.state.bridge == "" and f"shoal-{net.tag}-" not in _netns()


def _in(netns: str, *argv: str, timeout: float = 20) -> str:
    out = subprocess.run(
        ["ip", "netns", "exec", netns, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return out.stdout.strip() or f"error: {out.stderr.strip()[-300:]}"


def test_pods_reach_each_other_and_the_host_and_close_leaves_nothing(
    network: PodNetwork,
) -> None:
    a = network.add_pod(
        "reviews-0", hosts={"ratings ratings.default.svc.cluster.local": "10.96.0.7"}
    )
    b = network.add_pod("ratings-0")
    server = subprocess.Popen(
        ["ip", "netns", "exec", a.netns, sys.executable, ORIGDST, "serve", "9080", "reviews"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    procs.register(server)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == b"listening"
        answer = _in(b.netns, sys.executable, ORIGDST, "connect", a.ip, "9080")
        assert answer == f"reviews {a.ip}:9080 local:9080", answer
        host = subprocess.run(
            [sys.executable, ORIGDST, "connect", a.ip, "9080"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        ).stdout.strip()
        assert host.startswith("reviews "), host
        # names from /etc/netns/NS/hosts, bind-mounted for `ip netns exec` processes
        looked_up = _in(a.netns, "getent", "hosts", "ratings.default.svc.cluster.local")
        assert looked_up.split()[0] == "10.96.0.7", looked_up
        assert _in(a.netns, "ip", "route", "show", "default").startswith(
            f"default via {network.host_ip}"
        )
    finally:
        procs.terminate(server)
        if server.stdout is not None:
            server.stdout.close()
    bridge, links = network.state.bridge, [a.host_link, b.host_link]
    assert bridge in _links() and network.state_file.exists()
    network.close()
    left = _links()
    assert bridge not in left and not any(f"{link}@" in left for link in links), left
    assert a.netns not in _netns() and not network.state_file.exists()
    assert not Path(f"/etc/netns/{a.netns}").exists()


def test_the_next_run_cleans_what_a_killed_run_left(root: None, tmp_path: Path) -> None:
    state = tmp_path / "state"
    subnet = _subnet()
    dead_tag = f"k{os.getpid() % 10000}"
    script = textwrap.dedent(
        f"""
        import subprocess, sys, time
        from pathlib import Path
        from shoal.runtime.podnet import PodNetwork
        net = PodNetwork(Path({str(state)!r}), subnet={subnet!r}, tag={dead_tag!r}).open()
        pod = net.add_pod("app-0")
        # a process inside the pod outlives its run, as an app would
        subprocess.Popen(["ip", "netns", "exec", pod.netns, "sleep", "300"])
        print(pod.netns, flush=True)
        time.sleep(300)
        """
    )
    run = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    procs.register(run)
    try:
        assert run.stdout is not None
        dead_netns = run.stdout.readline().strip()
        assert dead_netns.startswith(f"shoal-{dead_tag}-"), dead_netns
    finally:
        run.send_signal(signal.SIGKILL)
        procs.kill(run)
        if run.stdout is not None:
            run.stdout.close()
    assert dead_netns in _netns() and f"shb{dead_tag}" in _links()  # all left behind
    left_pids = subprocess.run(
        ["ip", "netns", "pids", dead_netns], capture_output=True, text=True, check=True
    ).stdout.split()
    assert left_pids, "the pod's process should have outlived its run"

    nxt = PodNetwork(state, subnet=_subnet(), tag=f"n{os.getpid() % 10000}")
    try:
        nxt.open()
        assert dead_netns in nxt.swept and f"shb{dead_tag}" in nxt.swept, nxt.swept
        assert dead_netns not in _netns() and f"shb{dead_tag}" not in _links()
        for pid in left_pids:
            assert (
                not Path(f"/proc/{pid}").exists()
                or "Z" in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            )
        assert [p.name for p in state.glob("podnet-*.json")] == [nxt.state_file.name]
    finally:
        nxt.close()
