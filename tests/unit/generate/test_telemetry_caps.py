"""Series cardinality stays bounded: a real Envoy holds the stats logger's cap.

A label fed from the request path makes a new label set per distinct path; past the cap
(`stats_scope.max_counters` / `max_histograms`, generate/telemetry.py) Envoy must create no
more series while the ones it has keep counting.
"""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.route.v3 import route_components_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from harness import procs
from harness.ports import free_ports
from harness.wait import wait_until
from shoal.generate.telemetry import http_access_logs
from shoal.generate.telemetry_labels import HTTP_LABELS
from shoal.generate.telemetry_policy import CLIENT, HTTP_STATS, MetricsPolicy

ENVOY = Path(__file__).resolve().parents[3] / ".venv" / "bin" / "envoy"
CAP = 5
PATHS = 12


def _bootstrap(admin: int, port: int) -> bootstrap_pb2.Bootstrap:
    labels = dict.fromkeys(HTTP_LABELS, "x")
    path_label = {(stat, CLIENT): {"request_path": "%REQ(:PATH)%"} for stat in HTTP_STATS}
    hcm = hcm_pb2.HttpConnectionManager(stat_prefix="capped")
    vhost = hcm.route_config.virtual_hosts.add(name="any", domains=["*"])
    vhost.routes.add(
        match=route_components_pb2.RouteMatch(prefix="/"),
        direct_response=route_components_pb2.DirectResponseAction(status=200),
    )
    hcm.http_filters.add(name="envoy.filters.http.router").typed_config.Pack(router_pb2.Router())
    hcm.access_log.extend(
        http_access_logs(labels, MetricsPolicy(tags=path_label), CLIENT, max_series=CAP)
    )
    boot = bootstrap_pb2.Bootstrap()
    boot.admin.address.socket_address.address = "127.0.0.1"
    boot.admin.address.socket_address.port_value = admin
    listener = boot.static_resources.listeners.add(name="capped")
    listener.address.socket_address.address = "127.0.0.1"
    listener.address.socket_address.port_value = port
    chain = listener.filter_chains.add()
    chain.filters.add(name="envoy.filters.network.http_connection_manager").typed_config.Pack(hcm)
    return boot


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(resp.read().decode())


def _requests_total(admin: int) -> dict[str, int]:
    """requests_total per request_path, from Envoy's own Prometheus output."""
    out = {}
    for line in _get(f"http://127.0.0.1:{admin}/stats/prometheus").splitlines():
        if line.startswith("envoy_istio_requests_total{"):
            path = line.split('request_path="', 1)[1].split('"', 1)[0]
            out[path] = int(line.rsplit(" ", 1)[1])
    return out


def test_envoy_creates_no_series_past_the_cap(tmp_path: Path) -> None:
    admin, port = free_ports(2)
    path = tmp_path / "boot.pb"  # binary: stats_scope is appended in wire form
    path.write_bytes(_bootstrap(admin, port).SerializeToString())
    log = (tmp_path / "envoy.log").open("wb")
    proc = subprocess.Popen(
        [str(ENVOY), "-c", str(path), "--disable-hot-restart", "--concurrency", "1", "-l", "warn"],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    procs.register(proc)
    try:
        wait_until(
            lambda: _get(f"http://127.0.0.1:{admin}/ready") == "LIVE\n", 30, what="Envoy ready"
        )
        for i in range(PATHS):
            assert _get(f"http://127.0.0.1:{port}/p{i}") == ""
        _get(f"http://127.0.0.1:{port}/p0")  # an existing label set keeps counting
        counted = wait_until(
            lambda: _requests_total(admin) or None, 10, what="requests_total series"
        )
        assert len(counted) == CAP, counted
        assert counted["/p0"] == 2
        assert set(counted) == {f"/p{i}" for i in range(CAP)}  # the first CAP, nothing later
    finally:
        procs.terminate(proc)
        log.close()
