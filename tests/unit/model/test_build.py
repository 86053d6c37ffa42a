"""Snapshot building reuses what an edit did not touch, and only that."""

from __future__ import annotations

from shoal.api import ConfigStore
from shoal.model import MeshSnapshot, build_snapshot
from shoal.model.build import SnapshotMemo


def se(name: str, port: int) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: default}}
spec:
  hosts: [{name}.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints: [{{address: 10.0.0.1, ports: {{http: {port}}}}}]
"""


SELECTING = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: picked, namespace: default}
spec:
  hosts: [picked.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: picked}}
"""


def entry(address: str) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: picked-1, namespace: default}}
spec: {{address: {address}, labels: {{app: picked}}}}
"""


def build(
    store: ConfigStore, files: dict[str, str], memo: SnapshotMemo | None = None
) -> MeshSnapshot:
    result = store.update(files)
    assert not result.errors
    return build_snapshot("v", result.resources, memo=memo)


def test_an_edit_rebuilds_its_own_service_and_reuses_the_others() -> None:
    store, memo = ConfigStore(), SnapshotMemo()
    files = {"a.yaml": se("a", 8080), "b.yaml": se("b", 8080)}
    first = build(store, files, memo)
    second = build(store, {**files, "b.yaml": se("b", 9090)}, memo)
    a, b = "a.default.svc.cluster.local", "b.default.svc.cluster.local"
    assert second.services[a] is first.services[a]
    # another builder (no memo) carries nothing over: equal, not the same objects
    fresh = build(ConfigStore(), {**files, "b.yaml": se("b", 9090)})
    assert fresh.services[a] == first.services[a] and fresh.services[a] is not first.services[a]
    assert second.services[b] is not first.services[b]
    assert second.services[b].endpoints[0].ports == {"http": 9090}


def test_a_selecting_service_follows_its_workload_entries() -> None:
    store = ConfigStore()
    host = "picked.default.svc.cluster.local"
    first = build(store, {"se.yaml": SELECTING, "we.yaml": entry("10.1.0.1")})
    assert [e.address for e in first.services[host].endpoints] == ["10.1.0.1"]
    second = build(store, {"se.yaml": SELECTING, "we.yaml": entry("10.1.0.2")})
    assert [e.address for e in second.services[host].endpoints] == ["10.1.0.2"]
