"""Envoy hot restart by `shoal agent` (issue 15, section 4), with real Envoys and real HTTP.

While a steady load runs over keep-alive connections and a slow streaming answer is in
flight, `shoal agent reload` moves the sidecar's Envoy to a new epoch: no request fails, the
stream completes whole, a keep-alive connection of the old epoch is told `Connection: close`
and the next connection is held by the new epoch's process (checked in /proc, not guessed),
and the old epoch exits by itself after the parent-shutdown time. Then ten restarts in a row.
Every agent is checked at teardown: no process it started is left, nor its shared memory.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness.agentproc import Agent, AgentFactory, Stream, connection_owner
from harness.controlplane import _VENV_BIN
from harness.load import SteadyLoad
from harness.mesh import HOST, Mesh
from harness.wait import wait_until

pytestmark = pytest.mark.envoy


def _routed(agent: Agent) -> None:
    def ok() -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", agent.outbound, timeout=5)
        try:
            conn.request("GET", "/", headers={"Host": HOST})
            return conn.getresponse().status == 200
        finally:
            conn.close()

    wait_until(ok, 30, interval=0.1, what="the sidecar routing to reviews", describe=agent.log_tail)


def _get(conn: http.client.HTTPConnection) -> http.client.HTTPResponse:
    conn.request("GET", "/", headers={"Host": HOST})
    resp = conn.getresponse()
    resp.read()
    return resp


def test_reload_under_load_hands_over_to_the_new_epoch_without_a_failed_request(
    mesh: Mesh, agents: AgentFactory
) -> None:
    cp = mesh.start()
    agent = agents(cp.xds_port, "--drain-seconds", "1", "--parent-shutdown-seconds", "4")
    _routed(agent)
    before = agent.debug()
    old_pid = before["pid"]
    assert before["epoch"] == 0 and before["base_id"] is not None
    assert agent.server_info()["command_line_options"]["restart_epoch"] == 0

    # a long-lived keep-alive connection, held by epoch 0's process
    keep = http.client.HTTPConnection("127.0.0.1", agent.outbound, timeout=10)
    assert _get(keep).status == 200
    keep_port = keep.sock.getsockname()[1]
    assert connection_owner(agent.outbound, keep_port, [old_pid]) == old_pid

    with SteadyLoad(agent.outbound, HOST, rps=100, workers=4) as load:
        time.sleep(1)
        stream = Stream(agent.outbound, HOST).start()
        assert connection_owner(agent.outbound, stream.local_port or 0, [old_pid]) == old_pid
        started = time.monotonic()
        cli = subprocess.run(
            [str(_VENV_BIN / "shoal"), "agent", "reload", "--health-port", str(agent.health)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        took = time.monotonic() - started
        assert cli.returncode == 0, cli.stderr
        assert "epoch 1" in cli.stdout and "hot restart" in cli.stdout, cli.stdout
        after = agent.debug()
        new_pid = after["pid"]
        assert after["epoch"] == 1 and new_pid != old_pid and after["base_id"] == before["base_id"]
        assert agent.server_info()["command_line_options"]["restart_epoch"] == 1
        # the old epoch drains: the kept connection's next answer closes it...
        resp = _get(keep)
        assert resp.status == 200 and resp.getheader("connection") == "close", resp.headers
        keep.close()
        # ...and a new connection lands on the new epoch while the old one is still alive
        fresh = http.client.HTTPConnection("127.0.0.1", agent.outbound, timeout=10)
        assert _get(fresh).status == 200
        owner = connection_owner(agent.outbound, fresh.sock.getsockname()[1], [old_pid, new_pid])
        assert owner == new_pid, (owner, old_pid, new_pid)
        assert any(p["pid"] == old_pid for p in agent.debug()["draining"])
        fresh.close()
        stream.join()  # the in-flight stream finished on the old epoch, whole
        # the old epoch exits by itself after the parent-shutdown time, exit 0
        wait_until(lambda: not agent.debug()["draining"], 20, what="epoch 0 to exit")
        time.sleep(0.5)
    result = load.stop()
    print(f"reload (CLI round trip) {took:.2f} s; {result.summary()}")
    assert result.total > 200 and not result.failures, result.summary()
    assert "envoy epoch 0" in agent.log_tail(20000) and "exited: 0" in agent.log_tail(20000)


def test_ten_hot_restarts_in_a_row_under_load(mesh: Mesh, agents: AgentFactory) -> None:
    cp = mesh.start()
    agent = agents(cp.xds_port, "--drain-seconds", "1", "--parent-shutdown-seconds", "2")
    _routed(agent)
    took: list[float] = []
    waited: list[float] = []
    pids = [agent.debug()["pid"]]
    with SteadyLoad(agent.outbound, HOST, rps=100, workers=4) as load:
        for n in range(1, 11):
            stream = Stream(agent.outbound, HOST, chunks=4, every=0.2).start()
            status, body = agent.reload()
            assert status == 200, body
            assert body["epoch"] == n and body["hot"], body
            took.append(body["seconds"])
            waited.append(body["waited"])
            pids.append(body["pid"])
            assert agent.server_info()["command_line_options"]["restart_epoch"] == n
            stream.join()
        wait_until(lambda: not agent.debug()["draining"], 20, what="the last parent to exit")
    result = load.stop()
    print(
        f"10 hot restarts: seconds each {[round(t, 2) for t in took]}, of which waiting for the "
        f"previous parent {[round(w, 2) for w in waited]}, max {max(took):.2f}; {result.summary()}"
    )
    assert len(set(pids)) == 11
    assert result.total > 500 and not result.failures, result.summary()


def test_three_sidecars_on_one_host_restart_at_once_each_on_its_own_base_id(
    mesh: Mesh, agents: AgentFactory
) -> None:
    cp = mesh.start()
    given = 7_000_000 + os.getpid() % 1_000_000  # one given by its owner, two picked by Envoy
    fleet = [
        agents(cp.xds_port, "--parent-shutdown-seconds", "2", name="hot-a"),
        agents(cp.xds_port, "--parent-shutdown-seconds", "2", name="hot-b"),
        agents(
            cp.xds_port, "--parent-shutdown-seconds", "2", "--base-id", str(given), name="hot-c"
        ),
    ]
    for agent in fleet:
        _routed(agent)
    base_ids = [agent.debug()["base_id"] for agent in fleet]
    assert len(set(base_ids)) == 3 and base_ids[2] == given, base_ids
    for base_id in base_ids:
        assert Path(f"/dev/shm/envoy_shared_memory_{base_id * 10}").exists()
    loads = [SteadyLoad(a.outbound, HOST, rps=30, workers=2).start() for a in fleet]
    try:
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda a: a.reload(), fleet))
        for agent, (status, body) in zip(fleet, answers, strict=True):
            assert status == 200 and body["epoch"] == 1 and body["hot"], body
            assert agent.debug()["base_id"] == body["base_id"]
        # traffic on the new epochs too (2 s at 30 rps), not only across the hand-over
        time.sleep(2)
    finally:
        results = [load.stop() for load in loads]
    print(f"restarts {[b for _, b in answers]}; " + " | ".join(r.summary() for r in results))
    for result in results:
        # the count depends on how long the reloads took; what matters is none failed
        assert result.total >= 30 and not result.failures, result.summary()
