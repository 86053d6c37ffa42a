"""A config file that cannot be read is an error of that file, not a deletion."""

from __future__ import annotations

from pathlib import Path

from shoal.api import Change, ConfigStore
from shoal.sources.directory import DirCache, read_changes

VS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews.example.com]
  # owner: {owner}
  http:
  - route:
    - destination: {{host: reviews.example.com}}
"""
SE = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: reviews
spec:
  hosts: [reviews.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 80, name: http, protocol: HTTP}]
"""


def _setup(root: Path) -> tuple[DirCache, ConfigStore]:
    (root / "se.yaml").write_text(SE)
    (root / "vs.yaml").write_text(VS.format(owner="Rene"))
    cache, store = DirCache(), ConfigStore()
    result = store.apply(read_changes(root, cache, None))
    assert result.errors == () and len(result.resources) == 2
    return cache, store


def test_one_latin1_byte_in_a_comment_is_an_error_and_the_file_keeps_its_resources(
    tmp_path: Path,
) -> None:
    cache, store = _setup(tmp_path)
    good = store.resources
    latin1 = VS.format(owner="Ren\u00e9").encode("latin-1")
    (tmp_path / "vs.yaml").write_bytes(latin1)
    (change,) = read_changes(tmp_path, cache, ["vs.yaml"])
    assert change.error is not None and not change.deleted
    result = store.apply([change])
    assert result.resources == good and not result.changed
    (error,) = result.errors
    offset = latin1.index(b"\xe9")
    assert (error.file, error.line) == ("vs.yaml", 7)
    assert f"not valid UTF-8 at byte offset {offset} (line 7, column 15)" in error.message
    assert "0xe9" in error.message
    assert error.message.endswith("; keeping the resources of this file's last good version")
    # the error stays until the file is fixed, and the fix loses nothing
    assert store.apply([]).errors == result.errors
    (tmp_path / "vs.yaml").write_text(VS.format(owner="Ren\u00e9"))
    fixed = store.apply(read_changes(tmp_path, cache, ["vs.yaml"]))
    assert fixed.errors == () and fixed.resources == good


def test_binary_garbage_is_an_error_with_its_byte_offset(tmp_path: Path) -> None:
    cache, store = _setup(tmp_path)
    (tmp_path / "vs.yaml").write_bytes(b"kind: x\n\x00\x01\xff\xfe garbage")
    result = store.apply(read_changes(tmp_path, cache, ["vs.yaml"]))
    assert len(result.resources) == 2
    (error,) = result.errors
    assert error.line == 2 and "byte offset 10" in error.message
    assert "invalid start byte" in error.message


def test_an_unreadable_file_on_a_cold_start_is_reported(tmp_path: Path) -> None:
    (tmp_path / "vs.yaml").write_bytes(b"\xff")
    result = ConfigStore().apply(read_changes(tmp_path, DirCache(), None))
    assert result.resources == ()
    (error,) = result.errors
    assert error.file == "vs.yaml" and "not valid UTF-8 at byte offset 0" in error.message
    assert "keeping" not in error.message  # nothing to keep


def test_empty_and_deleted_files_keep_their_meaning(tmp_path: Path) -> None:
    cache, store = _setup(tmp_path)
    (tmp_path / "vs.yaml").write_text("")
    assert read_changes(tmp_path, cache, ["vs.yaml"]) == [Change.file("vs.yaml", "")]
    result = store.apply([Change.file("vs.yaml", "")])
    assert [r.kind for r in result.resources] == ["ServiceEntry"] and result.errors == ()
    (tmp_path / "se.yaml").unlink()
    result = store.apply(read_changes(tmp_path, cache, ["se.yaml"]))
    assert result.resources == () and result.errors == ()


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    cache, store = _setup(tmp_path)
    cache.max_bytes = 1000
    big = VS.format(owner="x" * 2000)
    (tmp_path / "vs.yaml").write_text(big)
    (change,) = read_changes(tmp_path, cache, ["vs.yaml"])
    result = store.apply([change])
    assert len(result.resources) == 2
    (error,) = result.errors
    assert (error.file, error.line) == ("vs.yaml", 1)
    assert f"file is {len(big)} bytes, over the limit of 1000 bytes; not read" in error.message
    assert "--max-file-bytes" in error.message
