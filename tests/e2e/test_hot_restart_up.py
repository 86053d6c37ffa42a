"""Hot restart inside `shoal up --secure` (issue 15, section 4): sidecars of a live mTLS mesh.

Under load from the client replica to two backend replicas (mTLS between the sidecars, the
certificates over the agents' SDS), the client's sidecar and one backend's sidecar are
reloaded as `shoal agent reload` does: no request fails, the new epochs get the workload
certificate from the same agent over SDS, and after `shoal up` stops no process it or any
epoch started is left.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.adminhttp import get_json, request
from harness.agentproc import leftover_processes
from harness.load import SteadyLoad
from harness.meshyaml import backend_and_client
from harness.up import ShoalUp
from harness.upruns import run_mesh
from harness.wait import wait_until

pytestmark = pytest.mark.envoy

MESH = backend_and_client(accounts=True)


@pytest.fixture
def secure_up(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ShoalUp]:
    extra = ["--secure", "--ca-dir", str(tmp_path / "ca")]
    yield from run_mesh(tmp_path, request, MESH, name="hot-up", extra_args=extra)


def _debug(replica: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = get_json(
        f"http://127.0.0.1:{replica['ports']['health']}/debug/envoy", timeout=5
    )
    return out


def test_reloading_sidecars_of_a_secure_shoal_up_mesh_fails_no_request(
    secure_up: ShoalUp,
) -> None:
    up = secure_up
    workloads = up.wait_ready(3, timeout=90)
    by_name = {r["replica"]: r for r in workloads}
    client, backend = by_name["client-0"], by_name["backend-0"]
    pids: set[int] = set()
    dirs = []
    load = SteadyLoad(client["ports"]["outbound"], "backend", rps=60, workers=3).start()
    try:
        time.sleep(1)
        for replica in (client, backend, client):
            status, body = request(
                "POST", f"http://127.0.0.1:{replica['ports']['health']}/reload", timeout=120
            )
            assert status == 200, body
            up.track()  # the new epoch's Envoy is one of shoal up's processes to check
            info = _debug(replica)
            pids.update(info["pids"])
            dirs.append(str(Path(info["bootstrap"]).parent))
        time.sleep(1)
    finally:
        result = load.stop()
    print(result.summary())
    assert result.total > 200 and not result.failures, result.summary()
    assert _debug(client)["epoch"] == 2 and _debug(backend)["epoch"] == 1
    # the new epochs hold the workload certificate from their agent's SDS
    for replica in (client, backend):
        dump = get_json(
            f"http://127.0.0.1:{replica['ports']['admin']}/config_dump"
            "?resource=dynamic_active_secrets"
        )
        assert {c["name"] for c in dump["configs"]} == {"default", "ROOTCA"}
    wait_until(
        lambda: not _debug(client)["draining"] and not _debug(backend)["draining"],
        20,
        what="the old epochs to exit",
    )
    survivors = up.stop()
    assert survivors == [], survivors
    for directory in dirs:
        assert leftover_processes(pids, directory) == []
