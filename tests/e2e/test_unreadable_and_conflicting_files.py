"""Files that cannot be read, and two files claiming one resource, lose nothing.

Each bad file below would move traffic to v2 if shoal took it at face value (or, for an
unreadable file, to every subset if shoal treated it as deleted, as it once did), so "requests
keep landing on v1" shows the last good config really stayed.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from harness.controlplane import _VENV_BIN
from harness.load import fire
from harness.mesh import HOST, VS_FILE, Mesh, virtual_service
from harness.wait import wait_until

pytestmark = pytest.mark.envoy

COPY = "reviews-vs-copy.yaml"  # sorts before reviews-vs.yaml


def _errors_of(status: dict[str, Any], file: str) -> list[dict[str, Any]]:
    return [e for e in status["errors"] if e.get("file") == file]


def _still_v1(mesh: Mesh) -> None:
    sidecar = mesh.sidecars[0]
    for _ in range(2):
        counts = fire(sidecar.outbound_port, HOST, 40)
        assert counts == {"status:200": 40, "v1": 40}, counts


def _unreadable_is_kept(mesh: Mesh, data: bytes, line: int, offset: int) -> None:
    cp = mesh.cp
    assert cp is not None
    mesh.config.write_bytes(VS_FILE, data)
    want = f"not valid UTF-8 at byte offset {offset}"
    (error,) = wait_until(
        lambda: [e for e in _errors_of(cp.config_status(), VS_FILE) if want in e["message"]],
        5,
        what=f"{want!r} for {VS_FILE} in /debug/config",
        describe=cp.describe,
    )
    assert error["line"] == line, error
    assert "keeping the resources of this file's last good version" in error["message"], error
    wait_until(
        lambda: f"{VS_FILE}:{line}: not valid UTF-8" in cp.stderr_text(),
        3,
        what="the error on stderr",
        describe=cp.describe,
    )
    _still_v1(mesh)


def test_a_file_that_is_not_utf8_keeps_its_resources(mesh: Mesh) -> None:
    cp = mesh.start(weights={"v1": 100})
    sidecar = mesh.sidecar()
    mesh.synced()
    mesh.wait_routes(sidecar, {"v1"})

    # a valid VirtualService (to v2) with one Latin-1 byte in a comment
    text = "# owner: Ren\u00e9\n" + virtual_service({"v2": 100})
    latin1 = text.encode("latin-1")
    _unreadable_is_kept(mesh, latin1, 1, latin1.index(b"\xe9"))
    # binary garbage
    _unreadable_is_kept(mesh, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 1, 0)

    # the fix applies: the bytes were the only blocker
    mesh.config.write(VS_FILE, text)
    mesh.wait_routes(sidecar, {"v2"}, timeout=5)
    assert _errors_of(cp.config_status(), VS_FILE) == []


def _analyze(directory: str) -> dict[str, Any]:
    proc = subprocess.run(
        [str(_VENV_BIN / "shoal"), "analyze", directory, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def test_two_files_defining_one_resource_the_one_in_force_stays(mesh: Mesh) -> None:
    cp = mesh.start(weights={"v1": 100})
    sidecar = mesh.sidecar()
    mesh.synced()
    mesh.wait_routes(sidecar, {"v1"})

    # a second file claims default/reviews; it sorts first, but the first file is in force
    mesh.config.write(COPY, virtual_service({"v2": 100}))
    (error,) = wait_until(
        lambda: _errors_of(cp.config_status(), COPY),
        5,
        what=f"a conflict error for {COPY}",
        describe=cp.describe,
    )
    assert (error["kind"], error["name"], error["field"]) == (
        "VirtualService",
        "default/reviews",
        "metadata.name",
    )
    assert error["line"] == 4, error
    assert f"defined twice: here and at {VS_FILE}:4, which is in force" in error["message"]
    _still_v1(mesh)
    mesh.synced()

    # `shoal analyze` loads the folder from scratch: the first by path wins, and says so
    report = _analyze(str(mesh.config.path))
    (cold,) = [e for e in report["errors"] if e["kind"] == "VirtualService"]
    assert cold["file"] == VS_FILE, report
    assert f"defined twice: here and at {COPY}:4, which comes first" in cold["message"]

    # once the file in force stops defining it, the other definition takes over
    mesh.config.remove(VS_FILE)
    mesh.wait_routes(sidecar, {"v2"}, timeout=5)
    assert cp.config_status()["errors"] == []
