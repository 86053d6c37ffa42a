"""`shoal diff` against a running control plane and real Envoys: the prediction, then the push.

Two sidecars (productpage, ratings) of the reviews scenario. `shoal diff` of a change tells
which proxies it would touch and which resources; nothing is pushed meanwhile (syncz
versions and the routing stay as they were). Then the change is applied for real, and the
xDS types whose version the control plane sent to each proxy changed are exactly the ones
the diff named.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.load import fire
from harness.mesh import DR_FILE, HOST, VS_FILE, Mesh, destination_rule, virtual_service
from harness.wait import wait_until

pytestmark = pytest.mark.envoy

SHOAL = Path(sys.executable).parent / "shoal"
ONLY_PRODUCTPAGE = """apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: productpage, namespace: default}
spec:
  workloadSelector: {labels: {app: productpage}}
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
"""


def _diff(url: str, *args: str) -> tuple[int, Any]:
    proc = subprocess.run([str(SHOAL), "diff", *args, "--control-plane", url, "-o", "json"],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def _predicted(result: Any) -> dict[str, dict[str, Any]]:
    return {
        p["workload"]: {t["type"]: t for t in p["types"]} for p in result["proxies"] if p["touched"]
    }


def _sent(mesh: Mesh) -> dict[str, dict[str, str]]:
    assert mesh.cp is not None
    return {p["workload"]: {k: v["sent"] for k, v in p["types"].items()} for p in mesh.cp.syncz()}


def _moved(mesh: Mesh, before: dict[str, dict[str, str]]) -> dict[str, set[str]]:
    """Once the push settled: per proxy, the xDS types whose sent version changed."""

    def settled() -> dict[str, set[str]] | None:
        mesh.synced()
        now = _sent(mesh)
        moved = {w: {k for k, v in types.items() if before[w].get(k) != v} for w, types in
                 now.items()}  # fmt: skip
        return moved if any(moved.values()) else None

    return wait_until(settled, 15, what="the change pushed")


def test_diff_predicts_the_push_and_pushes_nothing(mesh: Mesh, tmp_path: Path) -> None:
    cp = mesh.start(weights={"v1": 100}, subsets=("v1", "v2"))
    productpage = mesh.sidecar("productpage")
    mesh.sidecar("ratings")
    mesh.synced()
    before = _sent(mesh)

    # new weights: every sidecar's route table, nothing else
    change = tmp_path / VS_FILE
    change.write_text(virtual_service({"v2": 100}))
    code, result = _diff(cp.admin_url, str(change))
    assert code == 0
    predicted = _predicted(result)
    assert set(predicted) == {"productpage", "ratings"}
    for types in predicted.values():
        assert list(types) == ["rds"] and types["rds"]["changed"] == ["outbound_http"]
    # nothing was pushed: same versions, and requests still go to v1
    assert _sent(mesh) == before
    assert fire(productpage.outbound_port, HOST, 10) == {"status:200": 10, "v1": 10}

    mesh.config.write(VS_FILE, change.read_text())
    moved = _moved(mesh, before)
    assert {w: sorted(t) for w, t in moved.items() if t} == {w: sorted(t) for w, t in
                                                            predicted.items()}  # fmt: skip
    mesh.wait_routes(productpage, {"v2"})

    # a Sidecar for productpage only: ratings is not touched
    before = _sent(mesh)
    scoped = tmp_path / "sidecar.yaml"
    scoped.write_text(ONLY_PRODUCTPAGE)
    code, result = _diff(cp.admin_url, str(scoped))
    assert code == 0
    predicted = _predicted(result)
    # REGISTRY_ONLY: the route table loses its passthrough, and the listener the dynamic
    # forward proxy filter that only the passthrough needed (httpfilters.py)
    assert list(predicted) == ["productpage"]
    assert sorted(predicted["productpage"]) == ["lds", "rds"]
    mesh.config.write("sidecar.yaml", ONLY_PRODUCTPAGE)
    moved = _moved(mesh, before)
    assert {w: t for w, t in moved.items() if t} == {"productpage": {"lds", "rds"}}

    # a new subset: clusters and their endpoints added; an error names file and line
    before = _sent(mesh)
    subsets = tmp_path / DR_FILE
    subsets.write_text(destination_rule("v1", "v2", "v3"))
    broken = tmp_path / "broken-vs.yaml"
    broken.write_text(virtual_service({"v1": 60, "v2": 60}).replace("name: reviews", "name: x"))
    code, result = _diff(cp.admin_url, str(subsets), str(broken))
    assert code == 1
    v3 = f"outbound|80|v3|{HOST}"
    for types in _predicted(result).values():
        assert types["cds"]["added"] == [v3] and types["eds"]["added"] == [v3]
    (error,) = result["new_errors"]
    assert error["file"] == "broken-vs.yaml" and error["line"] > 1, error
    assert _sent(mesh) == before
