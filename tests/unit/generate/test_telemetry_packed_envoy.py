"""The packed labels tag (shoal.common.packedlabels) through a real Envoy and the metrics port.

Envoy carries one tag per stat whose value holds every label; the metrics port
(agent/metricsport.py) must serve Istio's labels from it exactly: every label present, in
every line of a histogram too, values with quotes, backslashes, `=` and commas intact (Envoy
escapes the first two), empty values as `unknown`, one series per distinct label set.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from harness.wait import wait_until
from shoal.common import packedlabels
from shoal.generate.telemetry import http_access_logs
from shoal.generate.telemetry_labels import HTTP_LABELS, literal
from shoal.generate.telemetry_policy import CLIENT, HTTP_STATS, MetricsPolicy

from .envoyhcm import envoy_with, get

ODD = 'a="b\\c,d=e}'  # a quote, a backslash, `=`, a comma and a brace in one value


def _samples(metrics: int) -> list[tuple[str, dict[str, str], float]] | None:
    text = get(f"http://127.0.0.1:{metrics}/stats/prometheus")
    out = [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]
    flushed = any(n == "istio_request_duration_milliseconds_count" for n, _, _ in out)
    return out if flushed else None


def test_the_metrics_port_serves_istios_labels_from_the_packed_tag(tmp_path: Path) -> None:
    labels = {name: literal(f"{name}-value") for name in HTTP_LABELS}
    labels["response_code"] = "%RESPONSE_CODE%"
    tagged = {(stat, CLIENT): {"x_tag": "%REQ(x-tag)%"} for stat in HTTP_STATS}
    logs = http_access_logs(labels, MetricsPolicy(tags=tagged), CLIENT)
    with envoy_with(tmp_path, logs) as (admin, port, metrics):
        for _ in range(3):
            get(f"http://127.0.0.1:{port}/", {"x-tag": ODD})
        get(f"http://127.0.0.1:{port}/")  # no header: an empty value
        raw = get(f"http://127.0.0.1:{admin}/stats/prometheus?filter=%5Eistio%5C.")
        samples = wait_until(lambda: _samples(metrics), 15, interval=0.5, what="a stats flush")
    # Envoy itself holds one tag per series, not 24
    counter_lines = [line for line in raw.splitlines() if line.startswith("envoy_istio_requests")]
    assert len(counter_lines) == 2
    for line in counter_lines:
        assert line.split("{", 1)[1].startswith(f'{packedlabels.TAG}="'), line
        assert line.count(packedlabels.SEPARATOR) == len(HTTP_LABELS), line  # 24 labels

    expected = {name: f"{name}-value" for name in HTTP_LABELS} | {"response_code": "200"}
    counts = {s[1]["x_tag"]: s[2] for s in samples if s[0] == "istio_requests_total"}
    assert counts == {ODD: 3, "unknown": 1}, counts
    names = {"istio_requests_total", "istio_request_duration_milliseconds_bucket"}
    for name, got, _ in samples:
        if name.startswith("istio_"):
            assert {k: got[k] for k in expected} == expected, (name, got)
            extra = set(got) - set(HTTP_LABELS) - {"x_tag", "le"}
            assert not extra, (name, got)
    assert names <= {name for name, _, _ in samples}
