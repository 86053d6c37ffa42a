"""Where documents that name no namespace land: `--namespace NS`, and a folder's `namespace`
file for the files below it (the nearest one wins), as `kubectl apply -n NS` would put them."""

from __future__ import annotations

from pathlib import Path

from shoal.cli.analyze import analyze
from shoal.engine import Pipeline
from shoal.sources.directory import DirCache, classify, read_changes

VS = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: %s}
spec: {hosts: [web]}
"""


def _keys(root: Path, namespace: str = "default") -> set[tuple[str, str, str]]:
    pipeline = Pipeline()
    pipeline.apply(read_changes(root, DirCache(), None, namespace))
    return {r.key for r in pipeline.store.resources}


def test_flag_and_folder_files_place_documents(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(VS % "top")
    (tmp_path / "shop" / "deep").mkdir(parents=True)
    (tmp_path / "shop" / "namespace").write_text("shop\n")
    (tmp_path / "shop" / "b.yaml").write_text(VS % "mid")
    (tmp_path / "shop" / "deep" / "c.yaml").write_text(VS % "deep")
    (tmp_path / "shop" / "deep" / "d.yaml").write_text(
        VS.replace("{name: %s}", "{name: %s, namespace: own}") % "named"
    )
    assert _keys(tmp_path, "team") == {
        ("VirtualService", "team", "top"),
        ("VirtualService", "shop", "mid"),
        ("VirtualService", "shop", "deep"),
        ("VirtualService", "own", "named"),  # a namespace written in the file always wins
    }
    (tmp_path / "shop" / "deep" / "namespace").write_text("deeper")
    assert ("VirtualService", "deeper", "deep") in _keys(tmp_path)
    assert ("VirtualService", "default", "top") in _keys(tmp_path)


def test_a_bad_namespace_file_is_an_error_of_the_files_it_places(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "namespace").write_text("Not_A_Name")
    (tmp_path / "x" / "a.yaml").write_text(VS % "a")
    report = analyze(tmp_path)
    (error,) = report.errors
    assert error.file == "x/namespace"
    assert "'Not_A_Name' is not a namespace name" in error.message
    assert "so x/a.yaml cannot be placed" in error.message


def test_analyze_namespace_flag(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(VS % "a")
    assert analyze(tmp_path, namespace="bookinfo").resources == 1


def test_editing_a_namespace_file_moves_the_files_below_it(tmp_path: Path) -> None:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "a.yaml").write_text(VS % "a")
    (tmp_path / "top.yaml").write_text(VS % "top")
    cache, pipeline = DirCache(), Pipeline()
    pipeline.apply(read_changes(tmp_path, cache, None))
    assert ("VirtualService", "default", "a") in {r.key for r in pipeline.store.resources}
    (tmp_path / "shop" / "namespace").write_text("shop")
    # the watcher asks for a full scan when a namespace file changes
    assert classify(str(tmp_path), [str(tmp_path / "shop" / "namespace")], cache) == (
        True,
        frozenset(),
    )
    changes = read_changes(tmp_path, cache, None)
    assert [(c.source, c.namespace) for c in changes] == [("shop/a.yaml", "shop")]
    pipeline.apply(changes)
    keys = {r.key for r in pipeline.store.resources}
    assert keys == {("VirtualService", "shop", "a"), ("VirtualService", "default", "top")}
    assert read_changes(tmp_path, cache, None) == []  # nothing changed since
