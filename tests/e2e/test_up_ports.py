"""`shoal up` when a port a sidecar was given is taken by another process.

The sidecar's Envoy is killed while its agent is held stopped, and a plain socket takes the
Envoy's admin and inbound ports before the agent runs on. Envoy then cannot start again on
them; the agent gives up after a few quick crashes and `shoal up` starts the replica again
on fresh ports, registering the new inbound port, so traffic through the caller's sidecar
still reaches it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.adminhttp import get_json
from harness.configdir import ConfigDir
from harness.meshyaml import backend_and_client
from harness.up import ShoalUp, descendants, envoy_cluster_hosts, get_via_proxy, process_table
from harness.wait import wait_until

pytestmark = pytest.mark.envoy

MESH = backend_and_client(backends=1)
BACKEND_CLUSTER = "outbound|80||backend.default.svc.cluster.local"
BUDGET_S = 30.0  # crashes with backoff, a new sidecar and app start-up on a loaded machine


@pytest.fixture
def up(tmp_path: Path) -> Iterator[ShoalUp]:
    folder = ConfigDir(tmp_path / "mesh")
    folder.write("mesh.yaml", MESH)
    run = ShoalUp(folder.path, tmp_path, name="up-ports")
    try:
        yield run.start()
    finally:
        survivors = run.stop()
        assert not survivors, f"processes outlived shoal up: {survivors}"


def _listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen()
    except OSError:
        sock.close()
        raise
    return sock


def _scrape_targets(up: ShoalUp) -> set[str]:
    groups = get_json(up.admin_url + "/debug/prometheus_sd")
    return {t for group in groups for t in group["targets"]}


def _envoys(agent_pid: int) -> list[int]:
    return [p.pid for p in descendants(agent_pid, process_table()) if "envoy" in p.cmdline]


def test_a_sidecar_whose_ports_are_taken_comes_back_on_fresh_ports(up: ShoalUp) -> None:
    workloads = up.wait_ready(2)
    client = next(r for r in workloads if r["replica"] == "client-0")["ports"]
    before = next(r for r in workloads if r["replica"] == "backend-0")
    old = before["ports"]
    agent = before["sidecar_pid"]
    envoys = wait_until(lambda: _envoys(agent), 10.0, what="the backend sidecar's Envoy")
    assert get_via_proxy(client["outbound"], "http://backend/")[0] == 200

    with contextlib.ExitStack() as held:
        # held stopped, the agent cannot start Envoy again before the sockets take its ports
        os.kill(agent, signal.SIGSTOP)
        try:
            for pid in envoys:
                os.kill(pid, signal.SIGKILL)
            for port in (old["admin"], old["inbound"]):
                held.enter_context(wait_until(lambda p=port: _listen(p), 10.0, what=f":{port}"))
        finally:
            os.kill(agent, signal.SIGCONT)

        def moved() -> dict[str, Any] | None:
            now = up.replica("backend-0")
            fresh = now["sidecar_pid"] not in (None, agent)
            return now if fresh and now["registered"] and now["state"] == "running" else None

        after = wait_until(
            moved,
            BUDGET_S,
            interval=0.1,
            what="backend-0 running and registered again with a new sidecar",
            describe=lambda: str(up.replica("backend-0")),
        )
        new = after["ports"]
        assert after["sidecar_restarts"] == 1
        assert new["admin"] != old["admin"] and new["inbound"] != old["inbound"]
        # the registry has the new inbound port: the client's sidecar routes to it only
        wait_until(
            lambda: (
                set(envoy_cluster_hosts(client["admin"]).get(BACKEND_CLUSTER, {}))
                == {f"127.0.0.1:{new['inbound']}"}
            ),
            BUDGET_S,
            what="the client's sidecar holding the backend's new inbound port",
            describe=lambda: str(envoy_cluster_hosts(client["admin"]).get(BACKEND_CLUSTER)),
        )
        _, body = wait_until(
            lambda: (r := get_via_proxy(client["outbound"], "http://backend/"))[0] == 200 and r,
            BUDGET_S,
            what="a request through the client's sidecar answered by backend-0",
        )
        assert body["replica"] == "backend-0"
        # the replica's table entry was given every port anew, not just the taken ones
        assert new["health"] != old["health"] and new["metrics"] != old["metrics"]
        # and Prometheus discovery (the new sidecar's node metadata) scrapes the new one
        targets = wait_until(
            lambda: (
                _scrape_targets(up)
                if f"127.0.0.1:{new['metrics']}" in _scrape_targets(up)
                else None
            ),
            BUDGET_S,
            what="the new metrics port in /debug/prometheus_sd",
            describe=lambda: str(_scrape_targets(up)),
        )
        assert f"127.0.0.1:{old['metrics']}" not in targets
