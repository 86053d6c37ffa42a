"""Series cardinality stays bounded: a real Envoy holds the stats logger's cap.

A label fed from the request path makes a new label set per distinct path; past the cap
(`stats_scope.max_counters` / `max_histograms`, generate/telemetry.py) Envoy must create no
more series while the ones it has keep counting.
"""

from __future__ import annotations

from pathlib import Path

from shoal.common import packedlabels
from shoal.generate.telemetry import http_access_logs
from shoal.generate.telemetry_labels import HTTP_LABELS
from shoal.generate.telemetry_policy import CLIENT, HTTP_STATS, MetricsPolicy

from .envoyhcm import envoy_with, get

CAP = 5
PATHS = 12


def _requests_total(admin: int) -> dict[str, int]:
    """requests_total per request_path, from Envoy's own Prometheus output."""
    out = {}
    for line in get(f"http://127.0.0.1:{admin}/stats/prometheus").splitlines():
        if line.startswith("envoy_istio_requests_total{"):
            packed = line.split(f'{packedlabels.TAG}="', 1)[1].split('"', 1)[0]
            out[packedlabels.unpack(packed)["request_path"]] = int(line.rsplit(" ", 1)[1])
    return out


def test_envoy_creates_no_series_past_the_cap(tmp_path: Path) -> None:
    labels = dict.fromkeys(HTTP_LABELS, "x")
    path_label = {(stat, CLIENT): {"request_path": "%REQ(:PATH)%"} for stat in HTTP_STATS}
    logs = http_access_logs(labels, MetricsPolicy(tags=path_label), CLIENT, max_series=CAP)
    with envoy_with(tmp_path, logs) as (admin, port, _):
        for i in range(PATHS):
            assert get(f"http://127.0.0.1:{port}/p{i}") == ""
        get(f"http://127.0.0.1:{port}/p0")  # an existing label set keeps counting
        counted = _requests_total(admin)
    assert len(counted) == CAP, counted
    assert counted["/p0"] == 2
    assert set(counted) == {f"/p{i}" for i in range(CAP)}  # the first CAP, nothing later
