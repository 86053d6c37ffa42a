"""Config changes under steady load never fail a request, whatever order files land in.

Each test runs ``SteadyLoad`` (150 rps) through the sidecar across the change and asserts zero
failed requests: a 503 from a route naming a cluster Envoy has not warmed (``NC``) or from a
cluster removed while routes still named it would show up here.
"""

from __future__ import annotations

import time

import pytest

from harness.load import LoadResult, SteadyLoad
from harness.mesh import (
    DR_FILE,
    HOST,
    VS_FILE,
    Mesh,
    destination_rule,
    virtual_service,
)
from harness.wait import stays_true, wait_until

pytestmark = pytest.mark.envoy

SPLIT_V3 = {"v1": 50, "v3": 50}


def _wait_v3_traffic(load: SteadyLoad, mesh: Mesh, timeout: float = 10.0) -> None:
    wait_until(
        lambda: load.snapshot().by_backend["v3"] >= 20,
        timeout,
        what="traffic to reach v3",
        describe=lambda: load.snapshot().summary(),
    )


def _assert_clean(result: LoadResult) -> None:
    assert result.total >= 100, result.summary()
    assert result.failures == [], result.summary()


def _wait_new_version(mesh: Mesh, before: str) -> None:
    assert mesh.cp is not None
    cp = mesh.cp
    wait_until(
        lambda: cp.config_status()["version"] != before,
        5,
        what="the control plane to build a new snapshot",
        describe=cp.describe,
    )


def test_virtualservice_before_its_subset(mesh: Mesh) -> None:
    """The VS naming v3 lands first; the DR defining v3 comes after."""
    cp = mesh.start(weights={"v1": 100})
    sidecar = mesh.sidecar()
    mesh.synced()
    mesh.wait_routes(sidecar, {"v1"})

    with SteadyLoad(sidecar.outbound_port, HOST, rps=150) as load:
        time.sleep(0.3)
        mesh.config.write(VS_FILE, virtual_service(SPLIT_V3))
        # Until v3 exists the VS is refused (subset unknown); wait until shoal has judged it,
        # so the DR really arrives second.
        wait_until(lambda: cp.config_status()["errors"], 5, what="VS naming v3 to be refused")
        time.sleep(0.3)
        mesh.config.write(DR_FILE, destination_rule("v1", "v2", "v3"))
        _wait_v3_traffic(load, mesh)
        time.sleep(0.3)
    result = load.stop()
    _assert_clean(result)
    assert not cp.config_status()["errors"]


def test_virtualservice_after_its_subset(mesh: Mesh) -> None:
    """The DR defining v3 lands first and the VS right after the snapshot that has it."""
    cp = mesh.start(weights={"v1": 100})
    sidecar = mesh.sidecar()
    mesh.synced()
    mesh.wait_routes(sidecar, {"v1"})

    with SteadyLoad(sidecar.outbound_port, HOST, rps=150) as load:
        time.sleep(0.3)
        before = cp.config_status()["version"]
        mesh.config.write(DR_FILE, destination_rule("v1", "v2", "v3"))
        # No waiting for Envoy: the VS chases the new cluster as closely as the control plane
        # allows, which is where a push that is not make-before-break would 503.
        _wait_new_version(mesh, before)
        mesh.config.write(VS_FILE, virtual_service(SPLIT_V3))
        _wait_v3_traffic(load, mesh)
        time.sleep(0.3)
    result = load.stop()
    _assert_clean(result)


def test_remove_subset_and_its_route_in_one_step(mesh: Mesh) -> None:
    """One file holds DR and VS; one atomic write drops subset v3 and the route to it."""
    routing = "reviews-routing.yaml"
    mesh.start(weights=SPLIT_V3, subsets=("v1", "v2", "v3"), routing_file=routing)
    sidecar = mesh.sidecar()
    mesh.synced()
    mesh.wait_routes(sidecar, {"v1", "v3"})
    v3_cluster = f"outbound|80|v3|{HOST}"
    assert v3_cluster in sidecar.envoy.clusters()
    v3 = mesh.backends["v3"]

    with SteadyLoad(sidecar.outbound_port, HOST, rps=150) as load:
        _wait_v3_traffic(load, mesh)
        mesh.config.write(
            routing, f"{destination_rule('v1', 'v2')}---\n{virtual_service({'v1': 100})}"
        )
        sidecar.envoy.wait_for(
            lambda e: v3_cluster not in e.clusters(), 10, what=f"{v3_cluster} to be removed"
        )
        # Nothing reaches v3 any more once the change is through.
        seen = v3.requests
        assert stays_true(lambda: v3.requests == seen, 0.5), "v3 still gets traffic"
    result = load.stop()
    _assert_clean(result)
