"""The `shoal` CLI against a real control plane and real Envoys, run as a user runs it.

`proxy-status` reads the control plane's /debug/syncz; `proxy-config` finds the sidecar's
Envoy admin API through the ADMIN_PORT it sent in its node metadata and reads it. Each
command runs as a subprocess of the installed console script, with stdout a pipe, so the
tables are the plain, grep-able form.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.mesh import HOST, Mesh
from harness.wait import wait_until

pytestmark = pytest.mark.envoy

_BIN = Path(sys.executable).parent


def shoal(*args: str) -> subprocess.CompletedProcess[str]:
    script = _BIN / "shoal"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "shoal.cli.main"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=30, check=False
    )


def _columns(line: str) -> list[str]:
    # Columns are separated by at least two spaces; single spaces occur inside cells.
    return re.split(r"\s{2,}", line.strip())


def _rows(out: str) -> list[list[str]]:
    return [_columns(line) for line in out.splitlines() if line.strip()]


def test_proxy_status_and_proxy_config(mesh: Mesh) -> None:
    cp = mesh.start(weights={"v1": 80, "v2": 20}, subsets=("v1", "v2", "v3"))
    mesh.sidecar("productpage", "GRPC")
    mesh.sidecar("ratings", "DELTA_GRPC")
    mesh.synced()
    url = cp.admin_url

    status = shoal("proxy-status", "--control-plane", url)
    assert status.returncode == 0, status.stderr
    rows = _rows(status.stdout)
    assert rows[0] == ["NAME", "CDS", "LDS", "EDS", "RDS", "MODE", "VERSION", "NACKS", "LAG"]
    assert rows[1][:6] == ["productpage.default", "SYNCED", "SYNCED", "SYNCED", "SYNCED", "sotw"]
    assert rows[2][:6] == ["ratings.default", "SYNCED", "SYNCED", "SYNCED", "SYNCED", "delta"]
    assert len(rows) == 3, status.stdout

    as_json = shoal("proxy-status", "--control-plane", url, "-o", "json")
    assert {p["workload"] for p in json.loads(as_json.stdout)} == {"productpage", "ratings"}

    clusters = shoal("proxy-config", "clusters", "productpage", "--control-plane", url)
    assert clusters.returncode == 0, clusters.stderr
    assert [HOST, "80", "v1", "outbound", "EDS"] in _rows(clusters.stdout)

    routes = shoal("proxy-config", "routes", "productpage.default", "--control-plane", url)
    assert routes.returncode == 0, routes.stderr
    route = next(r for r in _rows(routes.stdout) if r[0] == "outbound_http")
    assert route[1] == f"{HOST}, reviews +2 more"
    assert route[4] == f"outbound|80|v1|{HOST} 80%, outbound|80|v2|{HOST} 20%"

    endpoints = shoal("proxy-config", "endpoints", "productpage", "--control-plane", url)
    assert endpoints.returncode == 0, endpoints.stderr
    healthy = {(r[0], r[3]) for r in _rows(endpoints.stdout) if r[1] == "HEALTHY"}
    for version, backend in mesh.backends.items():
        assert (f"127.0.0.1:{backend.port}", f"outbound|80|{version}|{HOST}") in healthy

    listeners = shoal("proxy-config", "listeners", "ratings", "--control-plane", url)
    assert "Route: outbound_http" in listeners.stdout, listeners.stderr

    for what, key in [
        ("clusters", "dynamic_active_clusters"),
        ("listeners", "dynamic_listeners"),
        ("routes", "dynamic_route_configs"),
        ("endpoints", "cluster_statuses"),
    ]:
        raw = shoal("proxy-config", what, "productpage", "--control-plane", url, "-o", "json")
        assert raw.returncode == 0, raw.stderr
        assert key in json.loads(raw.stdout), what

    unknown = shoal("proxy-config", "clusters", "reviews", "--control-plane", url)
    assert unknown.returncode == 1
    assert "known workloads: productpage.default, ratings.default" in unknown.stderr


def test_proxy_status_shows_a_nack_with_envoys_error(mesh: Mesh) -> None:
    cp = mesh.start(test_hooks=True)
    mesh.sidecar("productpage")
    mesh.synced()

    cp.poison()  # a cluster Envoy rejects
    wait_until(
        lambda: "NACK" in shoal("proxy-status", "--control-plane", cp.admin_url).stdout,
        10,
        what="proxy-status to show the CDS NACK",
        describe=cp.describe,
    )
    out = shoal("proxy-status", "--control-plane", cp.admin_url).stdout
    rows = _rows(out)
    assert rows[1][:5] == ["productpage.default", "NACK", "SYNCED", "SYNCED", "SYNCED"]
    assert "Rejected by Envoy (NACK):" in out
    assert "productpage.default CDS: " in out


def test_a_reverted_nack_is_history_and_the_proxy_is_synced(mesh: Mesh) -> None:
    # Envoy NACKs a poisoned CDS; the config then goes back to what Envoy already holds,
    # with no other change. Envoy's last answer must become an ACK and the proxy SYNCED
    # again, with the NACK still visible as history (both protocols).
    cp = mesh.start(test_hooks=True)
    sotw = mesh.sidecar("productpage", "GRPC")
    delta = mesh.sidecar("ratings", "DELTA_GRPC")
    mesh.synced()
    cp.poison()
    wait_until(
        lambda: all((cp.proxy(s.node_id) or {})["types"]["cds"]["nack"] for s in (sotw, delta)),
        10,
        what="both proxies to NACK the poisoned CDS",
        describe=cp.describe,
    )
    cp.unpoison()
    synced = mesh.synced(timeout=5)
    for entry in synced:
        cds = entry["types"]["cds"]
        assert cds["nack"] is None and cds["sent"] == cds["acked"], entry
        assert cds["nacks"] == 1, entry
        last = cds["last_nack"]
        assert last["version"] != cds["acked"] and last["at"] > 0, entry
        assert "Invalid duration" in last["error"], last  # Envoy's own text
    out = shoal("proxy-status", "--control-plane", cp.admin_url).stdout
    rows = _rows(out)
    assert [r[:5] for r in rows[1:3]] == [
        ["productpage.default", "SYNCED", "SYNCED", "SYNCED", "SYNCED"],
        ["ratings.default", "SYNCED", "SYNCED", "SYNCED", "SYNCED"],
    ], out
    assert "Rejected by Envoy (NACK):" not in out
    assert "Rejected earlier, accepted since (last NACK):" in out
    assert "productpage.default CDS at " in out and "ratings.default CDS at " in out
    # Envoy kept serving throughout, and still routes.
    mesh.wait_routes(sotw, {"v1"})
    mesh.wait_routes(delta, {"v1"})


def test_proxy_status_unreachable_control_plane(mesh: Mesh) -> None:
    cp = mesh.start()
    cp.stop()
    result = shoal("proxy-status", "--control-plane", cp.admin_url)
    assert result.returncode == 1
    assert f"cannot reach the control plane at {cp.admin_url}/debug/syncz" in result.stderr
