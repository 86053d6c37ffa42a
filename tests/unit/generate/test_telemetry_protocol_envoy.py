"""`request_protocol` through a real Envoy: the protocol filter (generate/telemetry_peer.py)
stores `application/grpc` for a gRPC content type and nothing otherwise; the metrics port
(agent/metricsport.py) serves them as Istio's `grpc` and `http`."""

from __future__ import annotations

from pathlib import Path

from harness.wait import wait_until
from shoal.generate.telemetry import http_access_logs
from shoal.generate.telemetry_labels import HTTP_LABELS, REQUEST_PROTOCOL
from shoal.generate.telemetry_peer import protocol_filter
from shoal.generate.telemetry_policy import CLIENT, MetricsPolicy

from .envoyhcm import envoy_with, get


def _protocols(metrics: int) -> dict[str, int] | None:
    out = {}
    for line in get(f"http://127.0.0.1:{metrics}/stats/prometheus").splitlines():
        if line.startswith("istio_requests_total{"):
            value = line.split('request_protocol="', 1)[1].split('"', 1)[0]
            out[value] = int(line.rsplit(" ", 1)[1])
    return out or None


def test_grpc_and_http_requests_are_told_apart(tmp_path: Path) -> None:
    labels = dict(dict.fromkeys(HTTP_LABELS, "x"), request_protocol=REQUEST_PROTOCOL)
    logs = http_access_logs(labels, MetricsPolicy(), CLIENT)
    with envoy_with(tmp_path, logs, [protocol_filter()]) as (_, port, metrics):
        url = f"http://127.0.0.1:{port}/svc.Greeter/Hello"
        for _ in range(2):
            get(url, {"content-type": "application/grpc+proto"}, data=b"\0\0\0\0\0")
        get(url, {"content-type": "text/plain"}, data=b"hello")
        get(url)  # no content type at all
        counted = wait_until(lambda: _protocols(metrics), 15, what="requests_total series")
    assert counted == {"grpc": 2, "http": 2}, counted
