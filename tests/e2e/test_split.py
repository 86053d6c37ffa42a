"""A VirtualService weight split by DestinationRule subset, measured over real requests."""

from __future__ import annotations

import pytest

from harness.envoy import ApiType
from harness.load import fire
from harness.mesh import HOST, Mesh

pytestmark = pytest.mark.envoy

N = 1200


@pytest.mark.parametrize("api_type", ["GRPC", "DELTA_GRPC"])
def test_weighted_split_80_20(mesh: Mesh, api_type: ApiType) -> None:
    mesh.start(weights={"v1": 80, "v2": 20})
    sidecar = mesh.sidecar(api_type=api_type)
    mesh.synced()
    mesh.wait_routes(sidecar, {"v1", "v2"})

    counts = fire(sidecar.outbound_port, HOST, N)

    assert counts["status:200"] == N, counts
    # Envoy picks weighted clusters at random: over 1,200 requests one standard deviation
    # is ~1.2 points, so +-5 points only fails if the weights are wrong.
    share_v1 = 100 * counts["v1"] / N
    share_v2 = 100 * counts["v2"] / N
    assert abs(share_v1 - 80) <= 5, counts
    assert abs(share_v2 - 20) <= 5, counts
    # v3 is an endpoint of the service but in no routed subset.
    assert counts["v3"] == 0, counts
