"""`shoal tap` and `shoal top` through real Envoys' tap filters.

Under `shoal up --secure` (frontend -> reviews, 30 ms added latency): while `shoal tap
reviews` is attached, known requests show up one line each with method, path, status,
latency and the caller's identity from its verified certificate; `shoal top --once/--json`
groups them by source, destination, method and path; `--outbound` taps the caller's side;
a second tap on a tapped proxy is refused clearly. Against a standalone control plane with
harness sidecars (test SDS certificates) `shoal tap` works the same. The same `shoal up` also
answers `shoal diff` (its start is most of this module's time; tests/e2e/test_diff.py checks
the diff against a standalone control plane).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.backend import Backend
from harness.configdir import ConfigDir
from harness.controlplane import wait_synced
from harness.sds import spiffe
from harness.secmesh import SecureMesh, call, service_entry
from harness.telemetrymesh import MESH, REVIEWS, send
from harness.up import ShoalUp, get_via_proxy
from harness.wait import wait_until

pytestmark = pytest.mark.envoy

SHOAL = Path(sys.executable).parent / "shoal"
FRONTEND_ID = "spiffe://cluster.local/ns/default/sa/frontend"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShoalUp]:
    tmp = tmp_path_factory.mktemp("tap")
    folder = ConfigDir(tmp / "mesh")
    folder.write("mesh.yaml", MESH)
    extra = ["--secure", "--ca-dir", str(tmp / "ca"), "--no-status"]
    up = ShoalUp(folder.path, tmp, name="tap-up", extra_args=extra)
    up.start()
    try:
        up.wait_ready(2)
        send(up, ok=1, failed=0)  # both sidecars have the routes and certificates
        yield up
    finally:
        print(up.describe())
        up.stop()


def _shoal(url: str, *args: str) -> subprocess.Popen[str]:
    argv = [str(SHOAL), *args, "--control-plane", url]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _attached(proc: subprocess.Popen[str]) -> None:
    """Wait for the 'tapping ...' line: from then on every request is seen."""
    assert proc.stderr is not None
    first = proc.stderr.readline()
    if not first.startswith("tapping "):
        proc.kill()
        raise AssertionError(first + proc.stderr.read())


def _get(up: ShoalUp, path: str) -> None:
    outbound = up.replica("frontend-0")["ports"]["outbound"]
    status, _ = get_via_proxy(outbound, f"http://{REVIEWS}{path}")
    assert status == 200


def _json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_tap_shows_each_request_with_the_callers_verified_identity(mesh: ShoalUp) -> None:
    proc = _shoal(mesh.admin_url, "tap", "reviews", "-n", "default", "--max", "5", "-o", "json")
    _attached(proc)
    send(mesh, ok=4, failed=1)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    events = _json_lines(out)
    assert [e["status"] for e in events] == [200, 200, 200, 200, 500], events
    for e in events:
        assert (e["proxy"], e["direction"], e["method"], e["path"]) == (
            "reviews-0", "inbound", "GET", "/"
        )  # fmt: skip
        assert e["source_principal"] == FRONTEND_ID
        assert e["source_workload"] == e["source"] == "frontend"
        assert e["destination"] == "reviews"
        assert e["latency_ms"] >= 25, e  # the app adds 30 ms
        assert e["request_id"]


def test_tap_table_and_a_second_tap_is_refused(mesh: ShoalUp) -> None:
    proc = _shoal(mesh.admin_url, "tap", "reviews", "--max", "1")
    _attached(proc)
    second = _shoal(mesh.admin_url, "tap", "reviews", "--max", "1")
    _, err2 = second.communicate(timeout=30)
    assert second.returncode == 1
    assert "another tap is attached to this proxy" in err2, err2
    _get(mesh, "/table?x=1")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    header, row = (re.split(r"\s{2,}", line.strip()) for line in out.splitlines())
    assert header == [
        "PROXY", "DIR", "SRC", "SRC_ID", "DST", "METHOD", "PATH", "STATUS", "LATENCY"
    ]  # fmt: skip
    assert row[:8] == ["reviews-0", "in", "frontend", FRONTEND_ID, "reviews", "GET", "/table",
                       "200"]  # fmt: skip
    assert row[8].endswith("ms")


def test_outbound_tap_shows_what_the_caller_sent(mesh: ShoalUp) -> None:
    proc = _shoal(mesh.admin_url, "tap", "frontend", "--outbound", "--max", "1", "-o", "json")
    _attached(proc)
    _get(mesh, "/from-frontend")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    (e,) = _json_lines(out)
    assert (e["direction"], e["source"], e["destination"], e["path"], e["status"]) == (
        "outbound", "frontend", REVIEWS, "/from-frontend", 200
    )  # fmt: skip


def test_top_groups_the_busiest_paths(mesh: ShoalUp) -> None:
    table = _shoal(mesh.admin_url, "top", "reviews", "--once", "--window", "6s")
    _attached(table)
    for path, n in (("/busy", 5), ("/quiet", 2)):
        for _ in range(n):
            _get(mesh, path)
    out, err = table.communicate(timeout=30)
    assert table.returncode == 0, err
    lines = [re.split(r"\s{2,}", line.strip()) for line in out.splitlines() if line.strip()]
    assert lines[0] == ["SOURCE", "DESTINATION", "METHOD", "PATH", "COUNT", "SUCCESS", "BEST",
                        "WORST", "LAST"]  # fmt: skip
    assert [line[:6] for line in lines[1:]] == [
        ["frontend", "reviews", "GET", "/busy", "5", "100.00%"],
        ["frontend", "reviews", "GET", "/quiet", "2", "100.00%"],
    ]
    best, worst = (float(v.removesuffix("ms")) for v in lines[1][6:8])
    assert 25 <= best <= worst

    as_json = _shoal(mesh.admin_url, "top", "reviews", "--json", "--window", "5s")
    _attached(as_json)
    send(mesh, ok=3, failed=1)
    out, err = as_json.communicate(timeout=30)
    assert as_json.returncode == 0, err
    (row,) = json.loads(out)
    assert (row["source"], row["path"], row["count"], row["success"]) == ("frontend", "/", 4, 0.75)


def test_top_live_redraws_until_interrupted(mesh: ShoalUp) -> None:
    proc = _shoal(mesh.admin_url, "top", "reviews", "--refresh", "1s")
    _attached(proc)
    seen: list[str] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: seen.extend(proc.stdout or []), daemon=True)
    reader.start()
    try:
        _get(mesh, "/live")
        wait_until(lambda: any("/live" in line for line in seen), 15, what=f"a frame ({seen})")
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=15)
        reader.join(5)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    assert code == 0
    frame = "".join(seen)
    assert "\x1b[H\x1b[2J" in frame  # each frame clears the screen first
    assert re.search(r"reviews: \d+ requests in \d+s \(Ctrl-C to stop\)", frame), frame
    (row,) = [re.split(r"\s{2,}", line.strip()) for line in seen if "/live" in line][-1:]
    assert row[:6] == ["frontend", "reviews", "GET", "/live", "1", "100.00%"]


def test_tap_of_an_unknown_workload_names_the_known_ones(mesh: ShoalUp) -> None:
    proc = _shoal(mesh.admin_url, "tap", "nope")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "no connected proxy is workload 'nope'" in err and "reviews.default" in err, err


def test_tap_against_a_standalone_control_plane(
    secmesh: SecureMesh, backend_factory: Callable[[str], Backend], config_dir: ConfigDir
) -> None:
    app = backend_factory("reviews")
    server = secmesh.sidecar("reviews", app_port=app.port)
    client = secmesh.sidecar("productpage")
    config_dir.write("reviews-se.yaml", service_entry(server.inbound))
    wait_synced(secmesh.cp, 2, 15)
    wait_until(lambda: call(client.outbound)[0] == 200, 10, interval=0.2, what="mTLS call")
    proc = _shoal(secmesh.cp.admin_url, "tap", "reviews", "--max", "2", "-o", "json")
    _attached(proc)
    assert call(client.outbound, "/one")[0] == 200
    assert call(client.outbound, "/two", method="POST")[0] == 200
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    events = _json_lines(out)
    assert [(e["method"], e["path"], e["status"]) for e in events] == [
        ("GET", "/one", 200),
        ("POST", "/two", 200),
    ]
    for e in events:
        assert e["source_principal"] == spiffe("productpage")
        assert e["source_workload"] == "productpage"


def test_diff_under_shoal_up(mesh: ShoalUp, tmp_path: Path) -> None:
    change = tmp_path / "reviews-timeout.yaml"
    change.write_text(
        f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [{REVIEWS}]
  http: [{{timeout: 2s, route: [{{destination: {{host: {REVIEWS}}}}}]}}]
"""
    )
    before = {p["node"]: p["types"] for p in mesh.syncz()}
    proc = subprocess.run(
        [str(SHOAL), "diff", str(change), "--control-plane", mesh.admin_url],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "2 of 2 proxies would change", proc.stdout
    assert lines.count("  ~ rds  outbound_http") == 2, proc.stdout
    assert {p["node"]: p["types"] for p in mesh.syncz()} == before  # nothing pushed
