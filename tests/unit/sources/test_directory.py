"""The config directory reader reads again only the files that changed."""

from __future__ import annotations


def test_config_dir_cache_rereads_only_changed_files(tmp_path: object) -> None:
    from pathlib import Path

    from shoal.sources.directory import DirCache, read_config_dir

    root = Path(str(tmp_path))
    (root / "a.yaml").write_text("a: 1\n")
    (root / "b.yaml").write_text("b: 1\n")
    cache = DirCache()
    assert read_config_dir(root, cache) == {"a.yaml": "a: 1\n", "b.yaml": "b: 1\n"}
    first = cache.entries["a.yaml"][3]
    tmp = root / ".b.tmp"
    tmp.write_text("b: 2\n")
    tmp.replace(root / "b.yaml")  # an editor's atomic save
    (root / "a.yaml").unlink()
    assert read_config_dir(root, cache) == {"b.yaml": "b: 2\n"}
    (root / "a.yaml").write_text("a: 1\n")
    files = read_config_dir(root, cache)
    assert files["a.yaml"] == "a: 1\n" and files["a.yaml"] is not first
