"""DestinationRule load balancing through a real Envoy: consistent hash, round robin, random,
least request. Each test measures a baseline first (no policy, or another policy) through the
same sidecar, so it shows the behaviour comes from the policy and not from chance.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from harness.controlplane import ControlPlane
from harness.drmesh import CLUSTER, DrMesh
from harness.faulty import FaultyBackend, burst
from harness.load import fire
from harness.mesh import HOST, Mesh

pytestmark = pytest.mark.envoy

VALUES = 30  # distinct hash keys
REPEAT = 5  # requests per key


@pytest.fixture
def dr_mesh(mesh: Mesh, control_plane_factory: Callable[..., ControlPlane]) -> DrMesh:
    return DrMesh(mesh, control_plane_factory)


def _ports(mesh: Mesh) -> dict[str, int]:
    return {name: b.port for name, b in mesh.backends.items()}


def _replicas(counts: Counter[str]) -> set[str]:
    return {k for k in counts if ":" not in k}


def _per_key(dr: DrMesh, request: Callable[[int], Counter[str]]) -> dict[int, set[str]]:
    out = {}
    for key in range(VALUES):
        counts = request(key)
        assert counts["status:200"] == REPEAT, counts
        out[key] = _replicas(counts)
    return out


KEYS: dict[str, tuple[str, Callable[[DrMesh, int], Counter[str]]]] = {
    "header": (
        "httpHeaderName: x-user",
        lambda dr, k: fire(dr.port, HOST, REPEAT, headers={"x-user": f"user-{k}"}),
    ),
    "query": (
        "httpQueryParameterName: user",
        lambda dr, k: fire(dr.port, HOST, REPEAT, f"/items?user={k}&page=1"),
    ),
    "cookie": (
        "httpCookie: {name: session, ttl: 0s}",
        lambda dr, k: fire(dr.port, HOST, REPEAT, headers={"cookie": f"a=b; session=s{k}"}),
    ),
}


@pytest.mark.parametrize(
    ("key", "algorithm"),
    [
        ("header", "ringHash: {minimumRingSize: 1024}"),
        ("header", "maglev: {tableSize: 65537}"),
        ("query", "maglev: {}"),
        ("cookie", "ringHash: {}"),
    ],
)
def test_consistent_hash_pins_each_key_to_one_replica(
    dr_mesh: DrMesh, key: str, algorithm: str
) -> None:
    hash_key, send = KEYS[key]
    dr_mesh.start(_ports(dr_mesh.mesh))

    baseline = _per_key(dr_mesh, lambda k: send(dr_mesh, k))
    spread = [k for k, seen in baseline.items() if len(seen) > 1]
    # Least request picks among 3 replicas: five requests of one key almost never agree.
    assert len(spread) >= VALUES * 2 // 3, baseline

    dr_mesh.apply(
        f"trafficPolicy:\n  loadBalancer:\n    consistentHash: {{{hash_key}, {algorithm}}}"
    )
    pinned = _per_key(dr_mesh, lambda k: send(dr_mesh, k))
    assert all(len(seen) == 1 for seen in pinned.values()), pinned
    # ... and the keys are shared out, not all sent to one replica
    assert len(set().union(*pinned.values())) >= 2, pinned


def test_use_source_ip_sends_one_client_to_one_replica(dr_mesh: DrMesh) -> None:
    dr_mesh.start(_ports(dr_mesh.mesh))
    assert len(_replicas(fire(dr_mesh.port, HOST, 60))) == 3

    dr_mesh.apply("trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true}}}")
    counts = fire(dr_mesh.port, HOST, 60)
    assert counts["status:200"] == 60 and len(_replicas(counts)) == 1, counts


def _lb_policy(dr: DrMesh) -> str:
    assert dr.sidecar is not None
    for config in dr.sidecar.envoy.config_dump()["configs"]:
        for c in config.get("dynamic_active_clusters", []):
            if c["cluster"]["name"] == CLUSTER:
                return str(c["cluster"].get("lb_policy", "ROUND_ROBIN"))
    raise AssertionError(f"{CLUSTER} not in config_dump")


def test_round_robin_spreads_exactly_evenly_random_is_accepted(dr_mesh: DrMesh) -> None:
    dr_mesh.start(_ports(dr_mesh.mesh))
    baseline = fire(dr_mesh.port, HOST, 300)
    assert baseline["status:200"] == 300
    # Istio's default (least request, two random choices) is even only on average.
    assert sorted(baseline[r] for r in ("v1", "v2", "v3")) != [100, 100, 100], baseline

    dr_mesh.apply("trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}")
    assert _lb_policy(dr_mesh) == "ROUND_ROBIN"
    rr = fire(dr_mesh.port, HOST, 300)
    assert [rr[r] for r in ("v1", "v2", "v3")] == [100, 100, 100], rr

    dr_mesh.apply("trafficPolicy: {loadBalancer: {simple: RANDOM}}")
    assert _lb_policy(dr_mesh) == "RANDOM"
    rand = fire(dr_mesh.port, HOST, 300)
    assert rand["status:200"] == 300 and _replicas(rand) == {"v1", "v2", "v3"}, rand


def test_least_request_favours_the_fast_replica_under_concurrency(dr_mesh: DrMesh) -> None:
    with FaultyBackend("fast") as fast, FaultyBackend("slow", delay=0.2) as slow:
        dr_mesh.start(
            {"fast": fast.port, "slow": slow.port},
            "trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}",
        )
        rr = burst(dr_mesh.port, HOST, workers=10, requests_each=8)
        assert rr["status:200"] == 80, rr
        assert rr["fast"] <= 48, rr  # round robin: half each, whatever the latency

        dr_mesh.apply("trafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}")
        assert _lb_policy(dr_mesh) == "LEAST_REQUEST"
        lr = burst(dr_mesh.port, HOST, workers=10, requests_each=10)
        assert lr["status:200"] == 100, lr
        # Two random choices, fewer active requests wins: the slow replica, always busy, only
        # wins when both choices land on it (1 in 4).
        assert lr["fast"] >= 65, lr
