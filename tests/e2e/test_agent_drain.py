"""SIGTERM to `shoal agent` drains its Envoy (issue 15, section 4), with a real Envoy.

A slow streaming answer in flight when the agent is told to stop completes whole; while the
drain runs a kept-alive connection and a new one are answered with `Connection: close` (or
refused), never cut mid-answer; the agent exits 0 once nothing is in flight, within the
drain time, and leaves no process (checked in the process table) or shared memory behind.
A crashed Envoy comes back at epoch 0 on its base id; a SIGKILLed agent's Envoy exits too.
"""

from __future__ import annotations

import http.client
import os
import signal
import time
from pathlib import Path

import pytest

from harness.agentproc import AgentFactory, Stream, leftover_processes
from harness.mesh import HOST, Mesh
from harness.wait import wait_until

pytestmark = pytest.mark.envoy

DRAIN_S = 4.0


def _answer(conn: http.client.HTTPConnection) -> str:
    """'close' (a whole answer that closes the connection), 'refused', or what went wrong."""
    try:
        conn.request("GET", "/", headers={"Host": HOST})
        resp = conn.getresponse()
        resp.read()
    except ConnectionRefusedError:
        return "refused"
    finally:
        conn.close()
    return (
        "close"
        if resp.status == 200 and resp.getheader("connection") == "close"
        else (f"{resp.status} connection={resp.getheader('connection')}")
    )


def test_sigterm_lets_the_in_flight_stream_finish_then_leaves_nothing(
    mesh: Mesh, agents: AgentFactory
) -> None:
    cp = mesh.start()
    agent = agents(cp.xds_port, "--drain-seconds", str(DRAIN_S))
    wait_until(
        lambda: _answer(
            http.client.HTTPConnection("127.0.0.1", agent.outbound, timeout=5)
        ).startswith("200"),
        30,
        interval=0.1,
        what="the sidecar routing to reviews",
        describe=agent.log_tail,
    )
    keep = http.client.HTTPConnection("127.0.0.1", agent.outbound, timeout=10)
    keep.request("GET", "/", headers={"Host": HOST})
    keep.getresponse().read()
    stream = Stream(agent.outbound, HOST, chunks=8, every=0.25).start()  # ~2 s in flight
    assert agent.proc is not None
    agent.debug()  # remember its pids and directory for the teardown check
    # to the agent's process group, as shoal up stops a sidecar: Envoy has a group of its own,
    # so it is not ended beside the agent before the drain
    agent.signal_group(signal.SIGTERM)
    stopped = time.monotonic()
    time.sleep(0.5)
    kept = _answer(keep)
    fresh = _answer(http.client.HTTPConnection("127.0.0.1", agent.outbound, timeout=5))
    assert kept in ("close", "refused") and fresh in ("close", "refused"), (kept, fresh)
    stream.join()
    rc = agent.proc.wait(timeout=DRAIN_S + 15)
    took = time.monotonic() - stopped
    print(f"draining: kept connection {kept}, new one {fresh}; agent exited {rc} {took:.2f} s")
    assert rc == 0
    assert took < DRAIN_S + 10, took


def test_a_crashed_envoy_comes_back_at_epoch_0_on_the_same_base_id(
    mesh: Mesh, agents: AgentFactory
) -> None:
    cp = mesh.start()
    agent = agents(cp.xds_port)
    first = agent.debug()
    os.kill(first["pid"], signal.SIGKILL)
    again = wait_until(
        lambda: (d := agent.debug())["crash_restarts"] == 1 and d["pid"] != first["pid"] and d,
        30,
        interval=0.1,
        what="the agent to restart its Envoy",
        describe=agent.log_tail,
    )
    assert again["epoch"] == 0 and again["base_id"] == first["base_id"]
    wait_until(
        lambda: _answer(
            http.client.HTTPConnection("127.0.0.1", agent.outbound, timeout=5)
        ).startswith("200"),
        30,
        interval=0.1,
        what="the restarted Envoy routing",
        describe=agent.log_tail,
    )


def test_a_killed_agent_takes_its_envoy_with_it(mesh: Mesh, agents: AgentFactory) -> None:
    cp = mesh.start()
    agent = agents(cp.xds_port)
    info = agent.debug()
    assert agent.proc is not None
    agent.proc.kill()  # no exit hook runs: the Envoy goes by PR_SET_PDEATHSIG alone
    agent.proc.wait(timeout=10)
    wait_until(
        lambda: not leftover_processes(set(info["pids"]), agent.private_dir),
        10,
        what="the Envoy of the SIGKILLed agent to exit",
    )
    # the one thing a SIGKILL leaves: Envoy's 104-byte shared-memory file, ours to remove
    Path(f"/dev/shm/envoy_shared_memory_{info['base_id'] * 10}").unlink(missing_ok=True)
