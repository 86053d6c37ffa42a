"""Istio-style capture rules (agent/capture.py) in real network namespaces (issue 15, sec. 1).

Two namespaces joined by a veth pair: a "pod" (10.x.y.2, default route to its peer) with the
rules loaded, and a "peer" (10.x.y.3). In the pod, TCP listeners stand where Envoy's 15001 and
15006 would, run as the proxy's UID 1337, and answer with the original destination they
recover by SO_ORIGINAL_DST. Checked: the app's (UID 1000) outbound connections to a service
address or another host land on 15001 with their destination intact, the proxy's own do
not; inbound connections land on 15006 with theirs, Istio's always-excluded 15021 is reached
directly; excludeOutboundPorts, excludeOutboundIPRanges and includeInboundPorts annotations
change that; the rules come off again. Needs root, `ip` and iptables (.ci/run installs it).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import procs
from shoal.agent.capture import from_annotations
from shoal.agent.captureapply import apply_capture, remove_capture

pytestmark = pytest.mark.envoy

ORIGDST = str(Path(__file__).resolve().parents[1] / "harness" / "origdst.py")
APP_UID = 1000
VIP = "10.96.0.10"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@dataclass
class Pods:
    pod: str
    peer: str
    pod_ip: str
    peer_ip: str
    started: list[subprocess.Popen[bytes]]

    def run(self, netns: str, uid: int, *args: str) -> str:
        argv = ["ip", "netns", "exec", netns, "setpriv", f"--reuid={uid}", f"--regid={uid}"]
        argv += ["--clear-groups", sys.executable, "-I", ORIGDST, *args]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
        return out.stdout.strip() or f"error: {out.stderr.strip()[-200:]}"

    def serve(self, netns: str, uid: int, port: int, label: str) -> None:
        argv = ["ip", "netns", "exec", netns, "setpriv", f"--reuid={uid}", f"--regid={uid}"]
        argv += ["--clear-groups", sys.executable, "-I", ORIGDST, "serve", str(port), label]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        procs.register(proc)
        self.started.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"listening"


@pytest.fixture
def pods() -> Iterator[Pods]:
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("setpriv"):
        pytest.fail("capture tests need root, ip and setpriv (CI runs as root)")
    if not shutil.which("iptables-restore"):
        pytest.fail("capture tests need iptables: apt-get install iptables (.ci/run does)")
    tag = f"{os.getpid() % 100000}{random.randrange(100)}"
    net = f"10.{random.randrange(200, 250)}.{random.randrange(1, 250)}"
    pod, peer = f"shcap{tag}-pod", f"shcap{tag}-peer"
    made: list[str] = []
    out = Pods(pod, peer, f"{net}.2", f"{net}.3", [])
    try:
        for ns in (pod, peer):
            _ip("netns", "add", ns)
            made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", pod, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", peer)
        for ns, addr in ((pod, out.pod_ip), (peer, out.peer_ip)):
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
        # without a route a service address fails with ENETUNREACH before nat OUTPUT runs
        _ip("-n", pod, "route", "add", "default", "via", out.peer_ip)
        yield out
    finally:
        for proc in out.started:
            procs.terminate(proc)
            if proc.stdout is not None:
                proc.stdout.close()
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        left = subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, check=False
        ).stdout
        assert pod not in left and peer not in left, left


def test_capture_sends_app_traffic_through_the_proxy_ports_and_not_the_proxys_own(
    pods: Pods,
) -> None:
    p = pods
    # where Envoy would listen, as the proxy's UID; a health port; a real host beyond the pod
    p.serve(p.pod, 1337, 15001, "outbound")
    p.serve(p.pod, 1337, 15006, "inbound")
    p.serve(p.pod, 1337, 15021, "health")
    p.serve(p.peer, 0, 9000, "peer")
    assert p.run(p.pod, APP_UID, "connect", p.peer_ip, "9000").startswith("peer ")  # no rules

    apply_capture(from_annotations({}), p.pod)
    app_to_vip = p.run(p.pod, APP_UID, "connect", VIP, "80")
    assert app_to_vip == f"outbound {VIP}:80 local:15001", app_to_vip
    app_to_peer = p.run(p.pod, APP_UID, "connect", p.peer_ip, "9000")
    assert app_to_peer == f"outbound {p.peer_ip}:9000 local:15001", app_to_peer
    # the proxy's own connection goes where it was sent
    proxy_to_peer = p.run(p.pod, 1337, "connect", p.peer_ip, "9000")
    assert proxy_to_peer.startswith("peer "), proxy_to_peer
    # inbound: to 15006 with the original destination; 15021 is never captured
    inbound = p.run(p.peer, 0, "connect", p.pod_ip, "8080")
    assert inbound == f"inbound {p.pod_ip}:8080 local:15006", inbound
    health = p.run(p.peer, 0, "connect", p.pod_ip, "15021")
    assert health.startswith("health ") and health.endswith("local:15021"), health
    # the app talking to itself on loopback is left alone
    p.serve(p.pod, APP_UID, 7000, "self")
    assert p.run(p.pod, APP_UID, "connect", "127.0.0.1", "7000").startswith("self ")

    # Istio's annotations: excluded port and range, inbound capture of listed ports only
    apply_capture(
        from_annotations(
            {
                "traffic.sidecar.istio.io/excludeOutboundPorts": "9000",
                "traffic.sidecar.istio.io/excludeOutboundIPRanges": "10.96.0.0/16",
                "traffic.sidecar.istio.io/includeInboundPorts": "8080",
            }
        ),
        p.pod,
    )
    assert p.run(p.pod, APP_UID, "connect", p.peer_ip, "9000").startswith("peer ")
    assert p.run(p.pod, APP_UID, "connect", VIP, "80").startswith("error")  # not captured
    assert p.run(p.peer, 0, "connect", p.pod_ip, "8080").startswith("inbound ")
    assert p.run(p.peer, 0, "connect", p.pod_ip, "7000").startswith("self ")  # not listed

    remove_capture(p.pod)
    assert p.run(p.pod, APP_UID, "connect", p.peer_ip, "9000").startswith("peer ")
    rules = subprocess.run(
        ["ip", "netns", "exec", p.pod, "iptables-save", "-t", "nat"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "SHOAL" not in rules, rules
