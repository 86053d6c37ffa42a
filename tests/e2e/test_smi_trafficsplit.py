"""SMI TrafficSplit through a real sidecar, against the equivalent Istio VirtualService: the
same weighted routing (the sidecar's route holds the same weighted clusters, and requests
land on the backends in those shares), then a backend of weight 0 gets nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.load import fire
from harness.mesh import HOST, VS_FILE, Mesh, Sidecar, service_entry
from harness.wait import wait_until

pytestmark = pytest.mark.envoy
V1, V2 = "reviews-v1.default.svc.cluster.local", "reviews-v2.default.svc.cluster.local"


def _split(v1: int, v2: int) -> str:
    return f"""apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: {{name: reviews-rollout, namespace: default}}
spec:
  service: reviews
  backends:
  - {{service: reviews-v1, weight: {v1}}}
  - {{service: reviews-v2, weight: {v2}}}
"""


# what the split of 1 : 3 stands for, written by hand
EQUIVALENT = f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [{HOST}]
  http:
  - route:
    - {{destination: {{host: {V1}}}, weight: 25}}
    - {{destination: {{host: {V2}}}, weight: 75}}
"""


def _weighted(sidecar: Sidecar) -> list[tuple[str, int]]:
    """The weighted clusters of the sidecar's route for HOST ([] if not weighted)."""
    dump: dict[str, Any] = sidecar.envoy.config_dump()
    for config in dump["configs"]:
        for dynamic in config.get("dynamic_route_configs", []):
            for vhost in dynamic["route_config"].get("virtual_hosts", []):
                if HOST in vhost.get("domains", []):
                    action = vhost["routes"][0].get("route", {})
                    clusters = action.get("weighted_clusters", {}).get("clusters", [])
                    return [(c["name"], int(c["weight"])) for c in clusters]
    return []


def _shares_hold(sidecar: Sidecar) -> None:
    counts = fire(sidecar.outbound_port, HOST, 200)
    assert counts["status:200"] == 200, counts
    assert set(counts) == {"v1", "v2", "status:200"}, counts
    # binomial(200, 0.75): sd ~6; bounds ~5 sd either side
    assert 120 <= counts["v2"] <= 180, counts


def test_traffic_split_routes_as_the_equivalent_virtual_service(mesh: Mesh) -> None:
    mesh.start()
    sidecar = mesh.sidecar()
    mesh.wait_routes(sidecar, {"v1"})  # baseline: the mesh's VirtualService, all to v1
    v1 = service_entry({"v1": mesh.backends["v1"]}, V1, "r-v1")
    v2 = service_entry({"v2": mesh.backends["v2"]}, V2, "r-v2")
    mesh.config.write("backends.yaml", f"{v1}---\n{v2}")

    mesh.config.write(VS_FILE, EQUIVALENT)
    wait_until(lambda: len(_weighted(sidecar)) == 2, 15, interval=0.2, what="the Istio split")
    istio = _weighted(sidecar)
    _shares_hold(sidecar)

    mesh.config.write(VS_FILE, _split(1, 3))  # the VirtualService replaced by the split
    wait_until(lambda: _weighted(sidecar) == istio, 15, interval=0.2, what="the same weights",
               describe=lambda: str(_weighted(sidecar)))  # fmt: skip
    assert [w for _, w in istio] == [25, 75] and V2 in istio[1][0]
    _shares_hold(sidecar)

    mesh.config.write(VS_FILE, _split(0, 5))  # weight 0: reviews-v1 gets nothing
    mesh.wait_routes(sidecar, {"v2"})
