"""A NACK is recorded with Envoy's error, the rejected version is never re-sent, and a fix heals.

``--test-hooks`` lets the test make shoal push one cluster Envoy rejects. The proxy uses state of
the world, where every CDS push is the full set: an unrelated config change legitimately makes a
new version that still holds the poison (so one more rejection), but without a change the
rejected count must not grow.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from harness.controlplane import ControlPlane
from harness.envoy import wait_stat_stable
from harness.load import fire
from harness.mesh import HOST, Mesh, service_entry
from harness.wait import wait_until

pytestmark = pytest.mark.envoy

REJECTED = "cluster_manager.cds.update_rejected"


def _cds(cp: ControlPlane, node: str) -> dict[str, Any]:
    entry = cp.proxy(node)
    assert entry is not None, cp.syncz()
    status: dict[str, Any] = entry["types"]["cds"]
    return status


def test_nack_is_reported_not_resent_and_recovers(mesh: Mesh) -> None:
    cp = mesh.start(weights={"v1": 100}, test_hooks=True)
    sidecar = mesh.sidecar(api_type="GRPC")
    envoy = sidecar.envoy
    mesh.synced()
    mesh.wait_routes(sidecar, {"v1"})
    assert envoy.stat(REJECTED) == 0
    good = _cds(cp, sidecar.node_id)

    cp.poison()
    cds = wait_until(
        lambda: (s := _cds(cp, sidecar.node_id))["nack"] and s,
        5,
        what="a CDS NACK in syncz",
        describe=cp.describe,
    )
    envoy.wait_for(lambda e: e.stat(REJECTED) == 1, 5, what=f"{REJECTED} == 1")
    assert cds["sent"] != cds["acked"], cds
    assert cds["acked"] == good["acked"], (good, cds)
    # Envoy logs what it sent in the NACK's error_detail; syncz must carry that text.
    logged = re.findall(r"Cluster rejected: (.+)", envoy.log_path.read_text())
    assert logged, envoy.describe()
    assert logged[-1].strip()[:60] in cds["nack"] or cds["nack"].strip() in logged[-1], (
        logged[-1],
        cds["nack"],
    )
    # Envoy keeps serving with the last accepted config.
    assert fire(sidecar.outbound_port, HOST, 20) == {"status:200": 20, "v1": 20}

    # No config change: the rejected version is not re-sent.
    assert wait_stat_stable(envoy, REJECTED, 3.0) == 1
    stuck = _cds(cp, sidecar.node_id)
    assert stuck["sent"] == cds["sent"]
    # ...and the proxy lags behind since then (syncz lag_ms; proxy-status LAG): 3 s or more
    assert stuck["lag_ms"] >= 3000 and stuck["nacks"] == 1, stuck

    # An unrelated change (a new service) is a new version: that one may be rejected once.
    mesh.config.write(
        "ratings-se.yaml",
        service_entry(
            {"v1": mesh.backends["v1"]}, host="ratings.default.svc.cluster.local", name="ratings"
        ),
    )
    wait_until(
        lambda: _cds(cp, sidecar.node_id)["sent"] != cds["sent"],
        5,
        what="a new CDS version after the unrelated change",
        describe=cp.describe,
    )
    envoy.wait_for(lambda e: e.stat(REJECTED) == 2, 5, what=f"{REJECTED} == 2")
    assert wait_stat_stable(envoy, REJECTED, 2.0) == 2
    second = _cds(cp, sidecar.node_id)
    assert second["nack"], second

    cp.unpoison()
    wait_until(
        lambda: (s := _cds(cp, sidecar.node_id))["acked"] == s["sent"] and s["nack"] is None,
        5,
        what="CDS acked == sent after unpoison",
        describe=cp.describe,
    )
    assert _cds(cp, sidecar.node_id)["lag_ms"] == 0
    mesh.synced()
    time.sleep(0.2)
    assert envoy.stat(REJECTED) == 2
    # The unrelated change really applied once the poison was gone.
    assert any("ratings.default.svc.cluster.local" in name for name in envoy.clusters())
    assert fire(sidecar.outbound_port, HOST, 20) == {"status:200": 20, "v1": 20}
