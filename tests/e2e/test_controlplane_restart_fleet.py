"""After a control-plane restart, a fleet of 20 Envoys under load is SYNCED within 2 s of /ready.

The Envoys start from the bootstraps users really get: the one `shoal agent` writes (one of
them is a real `shoal agent` process, the rest use the same `sidecar_bootstrap`), half state
of the world and half delta, and the hand-written `examples/bootstrap/sidecar-none.yaml` with
only its ports changed. Envoy reads the reconnect backoff of an ADS stream from
`envoy_grpc.retry_policy`; with it anywhere else the default (0.5 s doubling towards 30 s,
jittered) left proxies unsynced for 5-11 s after the control plane was back.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import procs
from harness.adminhttp import request
from harness.controlplane import _VENV_BIN, wait_synced
from harness.load import SteadyLoad
from harness.mesh import HOST, Mesh
from harness.ports import free_port
from harness.wait import wait_until
from shoal.agent.bootstrap import ApiType, SidecarIdentity, sidecar_bootstrap

pytestmark = pytest.mark.envoy

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "bootstrap" / "sidecar-none.yaml"
FLEET = 20
RESYNC_S = 2.0


def _agent_bootstrap(index: int, xds_port: int, api_type: ApiType) -> tuple[int, Any]:
    """(outbound port, the bootstrap `shoal agent` writes for this sidecar)."""
    outbound, inbound, admin = free_port(), free_port(), free_port()
    ident = SidecarIdentity(
        name=f"fleet-{index}",
        workload=f"fleet-{index}",
        labels={"app": f"fleet-{index}"},
        outbound_port=outbound,
        inbound_port=inbound,
    )
    boot = sidecar_bootstrap(
        ident, xds_host="127.0.0.1", xds_port=xds_port, admin_port=admin, api_type=api_type
    )
    return outbound, boot


def _example_bootstrap(xds_port: int) -> tuple[int, str]:
    """The example file as a user would run it, with free ports instead of 19000-19002."""
    data = yaml.safe_load(EXAMPLE.read_text())
    outbound, inbound, admin = free_port(), free_port(), free_port()
    data["node"]["metadata"]["OUTBOUND_PORT"] = str(outbound)
    data["node"]["metadata"]["INBOUND_PORT"] = str(inbound)
    data["admin"]["address"]["socket_address"]["port_value"] = admin
    xds = data["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]
    xds["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["port_value"] = xds_port
    return outbound, yaml.safe_dump(data)


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        procs.terminate(proc)


def _start_agent(
    started: list[subprocess.Popen[bytes]], workdir: Path, xds_port: int
) -> tuple[int, int]:
    """A real `shoal agent` (it writes the bootstrap and runs Envoy); (outbound, admin)."""
    outbound, admin = free_port(), free_port()
    log = open(workdir / "agent.log", "ab")  # noqa: SIM115  (closed with the process)
    proc = subprocess.Popen(
        [
            str(_VENV_BIN / "shoal"),
            "agent",
            "--name",
            "fleet-agent",
            "--labels",
            "app=fleet-agent",
            "--xds-address",
            f"127.0.0.1:{xds_port}",
            "--outbound-port",
            str(outbound),
            "--inbound-port",
            str(free_port()),
            "--admin-port",
            str(admin),
            "--health-port",
            str(free_port()),
            "--drain-seconds",
            "0.2",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    log.close()
    procs.register(proc)
    started.append(proc)
    wait_until(
        lambda: (
            proc.poll() is None
            and request("GET", f"http://127.0.0.1:{admin}/ready", timeout=1)[0] == 200
        ),
        20,
        what="shoal agent's Envoy ready",
        describe=lambda: (workdir / "agent.log").read_text(errors="replace")[-3000:],
    )
    return outbound, admin


def test_fleet_resyncs_within_two_seconds_of_ready(
    mesh: Mesh, agent: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    cp = mesh.start(weights={"v1": 100})
    boots: list[tuple[int, Any]] = [
        _agent_bootstrap(i, cp.xds_port, "GRPC" if i % 2 else "DELTA_GRPC")
        for i in range(FLEET - 2)
    ]
    boots.append(_example_bootstrap(cp.xds_port))

    def start(item: tuple[int, tuple[int, Any]]) -> int:
        i, (outbound, boot) = item
        mesh.envoy_factory(boot, name=f"fleet-{i}")
        return outbound

    # Envoys start in parallel: one by one, 20 starts would take most of the test's time.
    with ThreadPoolExecutor(4) as pool:
        ports = list(pool.map(start, enumerate(boots)))
    ports.append(_start_agent(agent, tmp_path, cp.xds_port)[0])
    wait_synced(cp, FLEET, timeout=20)

    loads = [SteadyLoad(port, HOST, rps=10, workers=1).start() for port in ports]
    try:
        wait_until(
            lambda: all(load.snapshot().by_backend["v1"] > 0 for load in loads),
            10,
            what="every proxy serving v1",
        )
        cp.kill()
        # Long enough for every Envoy to notice and back off at least once.
        time.sleep(1.0)
        cp.start()
        ready_at = cp.wait_ready()
        wait_synced(cp, FLEET, timeout=10.0)
        resync = time.monotonic() - ready_at
        time.sleep(0.3)
    finally:
        results = [load.stop() for load in loads]

    print(f"fleet of {FLEET}: all SYNCED {resync:.2f} s after /ready")
    assert resync <= RESYNC_S, f"{resync:.2f} s after /ready, want <= {RESYNC_S} s"
    for result in results:
        assert result.failures == [], result.summary()
        assert result.total >= 20, result.summary()
        assert set(result.by_backend) == {"v1"}, result.summary()
