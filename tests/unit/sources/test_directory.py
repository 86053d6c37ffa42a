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


def test_refresh_reads_only_the_files_the_watcher_named(tmp_path: object) -> None:
    from pathlib import Path

    from shoal.sources.directory import DirCache, read_config_dir, refresh_config_files

    root = Path(str(tmp_path))
    (root / "ns").mkdir()
    (root / "ns" / "a.yaml").write_text("a: 1\n")
    (root / "b.yaml").write_text("b: 1\n")
    cache = DirCache()
    read_config_dir(root, cache)
    (root / "ns" / "a.yaml").write_text("a: 2\n")
    (root / "b.yaml").write_text("b: 2\n")  # changed, but not named: not looked at
    (root / "c.yaml").write_text("c: 1\n")
    files = refresh_config_files(root, cache, ["ns/a.yaml", "c.yaml", "gone.yaml", "x.txt"])
    assert files == {"b.yaml": "b: 1\n", "c.yaml": "c: 1\n", "ns/a.yaml": "a: 2\n"}
    (root / "c.yaml").unlink()
    assert "c.yaml" not in refresh_config_files(root, cache, ["c.yaml"])
    # the full scan still sees everything
    assert read_config_dir(root, cache)["b.yaml"] == "b: 2\n"


def test_watcher_events_name_files_or_ask_for_a_full_scan(tmp_path: object) -> None:
    from pathlib import Path

    from shoal.sources.directory import DirCache, classify, read_config_dir

    root = Path(str(tmp_path))
    (root / "ns").mkdir()
    (root / "ns" / "a.yaml").write_text("a: 1\n")
    (root / "new").mkdir()
    cache = DirCache()
    read_config_dir(root, cache)
    base = str(root)
    # a file and an editor's temporary file: the file alone, no scan
    assert classify(base, [f"{base}/ns/a.yaml", f"{base}/ns/.a.yaml.swp"], cache) == (
        False,
        frozenset({"ns/a.yaml"}),
    )
    # a folder that appeared (moved in whole: no event per file inside it)
    assert classify(base, [f"{base}/new"], cache)[0]
    # a folder that vanished: known from the files the cache holds under it
    (root / "ns" / "a.yaml").unlink()
    (root / "ns").rmdir()
    assert classify(base, [f"{base}/ns"], cache)[0]
    assert classify(base, ["/elsewhere/x.yaml"], cache) == (False, frozenset())


def test_the_reader_emits_changes_for_the_files_named_only(tmp_path: object) -> None:
    from pathlib import Path

    from shoal.api import Change
    from shoal.sources.directory import DirCache, read_changes

    root = Path(str(tmp_path))
    (root / "a.yaml").write_text("a: 1\n")
    (root / "b.yaml").write_text("b: 1\n")
    cache = DirCache()
    first = read_changes(root, cache, None)
    assert first == [Change.file("a.yaml", "a: 1\n"), Change.file("b.yaml", "b: 1\n")]
    (root / "a.yaml").write_text("a: 2\n")
    (root / "b.yaml").write_text("b: 2\n")
    (root / "c.yaml").write_text("c: 1\n")
    # only what the watcher named is looked at, and only a different text is a change
    assert read_changes(root, cache, ["a.yaml"]) == [Change.file("a.yaml", "a: 2\n")]
    (root / "a.yaml").unlink()
    assert read_changes(root, cache, ["a.yaml", "x.txt"]) == [Change.file("a.yaml", None)]
    # a full scan finds everything that differs
    assert read_changes(root, cache, None) == [
        Change.file("b.yaml", "b: 2\n"),
        Change.file("c.yaml", "c: 1\n"),
    ]
    assert read_changes(root, cache, None) == []
