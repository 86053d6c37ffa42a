"""State-of-the-world EDS carries only changed assignments; Envoy keeps the others.

An endpoint change to one service must move that service's traffic and leave every other
service's endpoints in place, for state-of-the-world and delta streams alike.
"""

from __future__ import annotations

import pytest

from harness.mesh import Mesh, service_entry

pytestmark = pytest.mark.envoy

RATINGS_HOST = "ratings.default.svc.cluster.local"


@pytest.mark.parametrize("api_type", ["GRPC", "DELTA_GRPC"])
def test_endpoint_change_moves_one_service_and_keeps_the_others(mesh: Mesh, api_type: str) -> None:
    b = mesh.backends
    mesh.config.write("ratings-se.yaml", service_entry({"v1": b["v3"]}, RATINGS_HOST, "ratings"))
    mesh.start(weights={"v1": 100})
    sidecar = mesh.sidecar(api_type=api_type)  # type: ignore[arg-type]
    mesh.synced()
    mesh.wait_routes(sidecar, {"v1"})
    mesh.wait_routes(sidecar, {"v3"}, host=RATINGS_HOST)
    cds_updates_before = sidecar.envoy.stats().get("cluster_manager.cds.update_success", 0)

    # ratings moves from backend v3 to backend v2; reviews' endpoints do not change
    mesh.config.write("ratings-se.yaml", service_entry({"v1": b["v2"]}, RATINGS_HOST, "ratings"))
    mesh.wait_routes(sidecar, {"v2"}, host=RATINGS_HOST, timeout=5)
    mesh.wait_routes(sidecar, {"v1"})  # reviews still has its endpoints
    mesh.synced()
    # an endpoint change sends no clusters
    stats = sidecar.envoy.stats()
    assert stats.get("cluster_manager.cds.update_success", 0) == cds_updates_before
