"""What makes `shoal agent` hot-restart its Envoy (issue 15, section 4), under steady load.

The agent watches its options file and the Envoy binary it names: a new control-plane
address (here a second control-plane replica), new bootstrap options and an upgraded binary
each move Envoy to a new epoch with no failed request. A bad options file, a bootstrap Envoy
rejects and an address where no control plane answers are refused with their reason, and
the running epoch keeps serving. A binary of another hot-restart version cannot take over
the sockets: that restart is cold, and says so. SIGHUP restarts like `shoal agent reload`.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest

from harness.adminhttp import get_json
from harness.agentproc import Agent, AgentFactory
from harness.configdir import ConfigDir
from harness.controlplane import ControlPlane
from harness.load import SteadyLoad
from harness.mesh import HOST, Mesh
from harness.ports import free_port
from harness.wait import wait_until
from shoal.agent.epochs import find_envoy

pytestmark = pytest.mark.envoy


def _epoch(agent: Agent, n: int, timeout: float = 40) -> dict[str, Any]:
    return wait_until(
        lambda: (d := agent.debug())["epoch"] == n and not d["restarting"] and d,
        timeout,
        interval=0.1,
        what=f"{agent.name} at epoch {n}",
        describe=agent.log_tail,
    )


def _refused(agent: Agent, text: str) -> str:
    error: str = wait_until(
        lambda: (e := agent.debug()["last_error"]) and text in e and e,
        20,
        interval=0.1,
        what=f"the agent to refuse: {text}",
        describe=agent.log_tail,
    )
    return error


def _bootstrap_dump(agent: Agent) -> dict[str, Any]:
    dump = get_json(f"http://127.0.0.1:{agent.admin}/config_dump", timeout=5)
    boot: dict[str, Any] = next(
        c["bootstrap"] for c in dump["configs"] if c["@type"].endswith("BootstrapConfigDump")
    )
    return boot


def test_options_file_and_binary_changes_restart_envoy_hot_and_bad_ones_are_refused(
    mesh: Mesh,
    agents: AgentFactory,
    control_plane_factory: Any,
    config_dir: ConfigDir,
    tmp_path: Path,
) -> None:
    cp = mesh.start()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    binary = bindir / "envoy"
    shutil.copy2(find_envoy(), binary)
    options = tmp_path / "agent-options.yaml"
    options.write_text(f"envoy: {binary}\n")
    agent = agents(
        cp.xds_port,
        *("--drain-seconds", "1", "--parent-shutdown-seconds", "2"),
        *("--options-file", str(options)),
    )
    wait_until(
        lambda: agent.envoy_ready() and _get_status(agent) == 200, 30, what="sidecar routing"
    )
    first_pid = agent.debug()["pid"]

    with SteadyLoad(agent.outbound, HOST, rps=80, workers=4) as load:
        # a new control-plane address: a second replica serving the same config
        cp2: ControlPlane = control_plane_factory(config_dir)
        options.write_text(f"envoy: {binary}\nxdsAddress: 127.0.0.1:{cp2.xds_port}\n")
        one = _epoch(agent, 1)
        xds = _bootstrap_dump(agent)["static_resources"]["clusters"][0]
        port = xds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
        assert port["socket_address"]["port_value"] == cp2.xds_port
        wait_until(
            lambda: any("hot-0" in p["node"] for p in cp2.syncz()),
            20,
            what="the new epoch's ADS stream on the second control plane",
        )

        # refused: an unknown value (file, line, key), no control plane at the address,
        # a bootstrap Envoy rejects; epoch 1 keeps serving meanwhile
        options.write_text(
            f"envoy: {binary}\nxdsAddress: 127.0.0.1:{cp2.xds_port}\napiType: REST\n"
        )
        assert f"{options}:3: apiType: 'REST'" in _refused(agent, "apiType")
        options.write_text(f"envoy: {binary}\nxdsAddress: 127.0.0.1:{free_port()}\n")
        _refused(agent, "no control plane answers at")
        options.write_text(
            f"envoy: {binary}\nxdsAddress: 127.0.0.1:{cp2.xds_port}\n"
            "bootstrapOverride:\n  stats_flush_interval: soon\n"
        )
        _refused(agent, "--mode validate refused")
        assert agent.debug()["epoch"] == 1 and agent.debug()["pid"] == one["pid"]

        # new bootstrap options
        options.write_text(
            f"envoy: {binary}\nxdsAddress: 127.0.0.1:{cp2.xds_port}\n"
            "bootstrapOverride:\n  stats_flush_interval: 7s\n"
        )
        _epoch(agent, 2)
        assert _bootstrap_dump(agent)["stats_flush_interval"] == "7s"

        # an upgraded binary moved into place at the same path
        fresh = bindir / "envoy.new"
        shutil.copy2(find_envoy(), fresh)
        os.replace(fresh, binary)
        three = _epoch(agent, 3)
        assert three["binary"] == str(binary)

        # SIGHUP: a restart although nothing changed
        agent.signal(signal.SIGHUP)
        _epoch(agent, 4)
        wait_until(lambda: not agent.debug()["draining"], 20, what="the last parent to exit")
    result = load.stop()
    print(result.summary())
    assert result.total > 300 and not result.failures, result.summary()

    # another hot-restart version: the sockets cannot be handed over, the restart is cold
    other = bindir / "envoy-other-version"
    other.write_text(
        f'#!/bin/sh\n[ "$1" = --hot-restart-version ] && {{ echo 0.1; exit 0; }}\n'
        f'exec {find_envoy()} "$@"\n'
    )
    other.chmod(0o755)
    options.write_text(f"envoy: {other}\nxdsAddress: 127.0.0.1:{cp2.xds_port}\n")
    cold = _epoch(agent, 0)
    assert cold["hot_restarts"] == 4 and cold["binary"] == str(other)  # this one was cold
    assert cold["pid"] not in (first_pid, one["pid"])
    wait_until(lambda: _get_status(agent) == 200, 30, what="routing after the cold restart")
    assert "restarting cold" in agent.log_tail(50000)


def _get_status(agent: Agent) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", agent.outbound, timeout=5)
    try:
        conn.request("GET", "/", headers={"Host": HOST})
        return conn.getresponse().status
    finally:
        conn.close()
