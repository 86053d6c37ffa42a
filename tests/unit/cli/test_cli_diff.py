"""`shoal diff --config-dir`: the demo folder, changed as a user would, through the real
pipeline and generator (no control plane, no Envoy: the proxies `shoal up` would run)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from shoal.cli.main import main

DEMO = Path(__file__).resolve().parents[3] / "examples" / "demo"
SIDECARS = {"frontend-0", "ratings-0", "reviews-v1-0", "reviews-v2-0", "traffic-0"}


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DEMO, tmp_path / "demo"))


def _diff(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code = main(["diff", *args, "-o", "json"])
    return code, json.loads(capsys.readouterr().out)


def _touched(result: Any) -> dict[str, dict[str, dict[str, list[str]]]]:
    """pod -> type -> {added, changed, removed} of every touched proxy."""
    return {
        p["node"].split("~")[2].rsplit(".", 1)[0]: {t["type"]: t for t in p["types"]}
        for p in result["proxies"]
        if p["touched"]
    }


def test_new_weights_change_every_sidecars_route_table_only(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    change = tmp_path / "reviews-routing.yaml"
    text = (demo / "reviews-routing.yaml").read_text()
    change.write_text(text.replace("weight: 90", "weight: 50").replace("weight: 10", "weight: 50"))
    code, result = _diff(capsys, str(change), "--config-dir", str(demo))
    assert code == 0
    touched = _touched(result)
    assert set(touched) == SIDECARS
    for types in touched.values():
        assert set(types) == {"rds"}
        assert types["rds"]["changed"] == ["outbound_http"]
        assert types["rds"]["added"] == types["rds"]["removed"] == []
        # of the table, only the reviews virtual host
        assert types["rds"]["details"] == {
            "outbound_http": ["~reviews.default.svc.cluster.local:80"]
        }
    # the folder itself is untouched: a second diff of the same change says the same
    assert (demo / "reviews-routing.yaml").read_text() == text


def test_a_policy_for_one_workload_touches_only_its_proxy(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    change = tmp_path / "deny.yaml"
    change.write_text(
        """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-delete, namespace: default}
spec:
  selector: {matchLabels: {app: reviews, version: v1}}
  action: DENY
  rules: [{to: [{operation: {methods: [DELETE]}}]}]
"""
    )
    code, result = _diff(capsys, str(change), "--config-dir", str(demo))
    assert code == 0
    assert _touched(result) == {
        "reviews-v1-0": {
            "lds": {
                "type": "lds",
                "added": [],
                "changed": ["inbound_http"],
                "removed": [],
                "details": {},
            }
        }
    }
    assert result["touched"] == 1 and len(result["proxies"]) == 5


def test_removing_subsets_removes_clusters_and_the_table_lists_them(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # without the routing rules the subsets are unused; dropping both files at once
    deletes = ["--delete", "reviews-routing.yaml", "--delete", "reviews-subsets.yaml"]
    code = main(["diff", str(demo / "traffic.yaml"), "--config-dir", str(demo), *deletes])
    out = capsys.readouterr().out
    assert code == 0
    assert "  - cds  outbound|80|v1|reviews.default.svc.cluster.local" in out
    assert "  - eds  outbound|80|v2|reviews.default.svc.cluster.local" in out
    assert "  ~ rds  outbound_http" in out
    assert out.rstrip().endswith("5 of 5 proxies would change")


def test_a_broken_change_is_reported_with_file_and_line_and_changes_nothing(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    change = tmp_path / "reviews-routing.yaml"
    text = (demo / "reviews-routing.yaml").read_text()
    change.write_text(text.replace("weight: 10", "weight: 20"))  # 90 + 20 != 100
    code = main(["diff", str(change), "--config-dir", str(demo)])
    out = capsys.readouterr().out
    assert code == 1
    assert "0 of 5 proxies would change" in out
    (error,) = [line for line in out.splitlines() if line.startswith("error (left out): ")]
    assert error.startswith("error (left out): reviews-routing.yaml:2"), error
    assert "weight" in error


def test_a_new_workload_is_a_new_proxy_with_everything_added(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    change = tmp_path / "details.yaml"
    change.write_text(
        """apiVersion: shoal.dev/v1alpha1
kind: LocalWorkload
metadata: {name: details, namespace: default}
spec:
  ports: [{number: 80, name: http, protocol: HTTP}]
  command: ["python", "-m", "shoal.samples.service"]
"""
    )
    code, result = _diff(capsys, str(change), "--config-dir", str(demo))
    assert code == 0
    touched = _touched(result)
    assert "inbound_http" in touched["details-0"]["lds"]["added"]
    # every other sidecar learns the new service
    for pod in SIDECARS:
        assert "outbound|80||details.default.svc.cluster.local" in touched[pod]["cds"]["added"]


def test_missing_files_and_folders_are_clear_errors(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["diff", "/nonexistent.yaml", "--config-dir", str(demo)]) == 2
    assert "/nonexistent.yaml: no such file or directory" in capsys.readouterr().err
    assert main(["diff", str(demo / "traffic.yaml"), "--config-dir", "/nonexistent"]) == 2
    assert "--config-dir /nonexistent: not a directory" in capsys.readouterr().err


def test_a_removed_workload_loses_everything(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = _diff(capsys, str(demo / "traffic.yaml"), "--config-dir", str(demo),
                         "--delete", "ratings.yaml")  # fmt: skip
    assert code == 0
    gone = _touched(result)["ratings-0"]
    assert "inbound_http" in gone["lds"]["removed"] and not gone["lds"]["added"]


def test_a_changed_folder_keeps_the_namespace_its_folder_gives(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the config folder: shop/ holds a namespace file and a workload naming no namespace
    (demo / "shop").mkdir()
    (demo / "shop" / "namespace").write_text("shop\n")
    (demo / "shop" / "web.yaml").write_text(
        """apiVersion: shoal.dev/v1alpha1
kind: LocalWorkload
metadata: {name: web}
spec:
  ports: [{number: 80, name: http, protocol: HTTP}]
  labels: {app: web}
  command: ["python", "-m", "shoal.samples.service"]
"""
    )
    # the change: a DIR whose shop/ file names no namespace either
    change = tmp_path / "change"
    (change / "shop").mkdir(parents=True)
    (change / "shop" / "deny.yaml").write_text(
        """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-delete}
spec:
  selector: {matchLabels: {app: web}}
  action: DENY
  rules: [{to: [{operation: {methods: [DELETE]}}]}]
"""
    )
    code, result = _diff(capsys, str(change), "--config-dir", str(demo))
    assert code == 0
    (web,) = [p for p in result["proxies"] if p["workload"] == "web"]
    assert web["namespace"] == "shop"
    assert [p["workload"] for p in result["proxies"] if p["touched"]] == ["web"]
