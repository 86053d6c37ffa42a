"""A `shoal up --secure` mesh for the telemetry tests, known traffic through it, and scrapes.

`frontend` and `reviews` (30 ms of added latency), each one replica with a secure sidecar.
The test sends requests as the frontend app would (through the frontend sidecar's outbound
port), so both sidecars report them: frontend as `reporter="source"`, reviews as
`reporter="destination"`. Every sidecar writes JSON access logs to its agent's output.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from harness.meshyaml import documents, local_workload
from harness.up import ShoalUp, get_via_proxy

MESH = documents(
    local_workload("reviews", service_account="reviews", env={"SHOAL_LATENCY": "30ms"}),
    local_workload("frontend", version="v2", service_account="frontend"),
    """\
apiVersion: shoal.dev/v1alpha1
kind: MeshConfig
metadata: {name: mesh, namespace: istio-system}
spec: {accessLogFile: /dev/stdout, accessLogEncoding: JSON}
""",
)
REVIEWS = "reviews.default.svc.cluster.local"


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float


def parse(text: str) -> list[Sample]:
    """Prometheus text exposition, parsed by prometheus_client's own parser."""
    return [
        Sample(s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats/prometheus", timeout=5) as resp:
        body: bytes = resp.read()
    return body.decode()


def select(samples: list[Sample], name: str, **labels: str) -> list[Sample]:
    return [
        s
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def total(samples: list[Sample], name: str, **labels: str) -> float:
    return sum(s.value for s in select(samples, name, **labels))


def set_knobs(app_port: int, knobs: dict[str, Any]) -> None:
    req = urllib.request.Request(
        f"http://127.0.0.1:{app_port}/admin/knobs",
        data=json.dumps(knobs).encode(),
        method="POST",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200


def send(up: ShoalUp, ok: int, failed: int, *, headers: dict[str, str] | None = None) -> None:
    """`ok` requests answered 200, then `failed` answered 500 (not retried, unlike 503), from
    frontend to reviews; reviews is healed again afterwards."""
    outbound = up.replica("frontend-0")["ports"]["outbound"]
    app = up.replica("reviews-0")["ports"]["app"]
    for _ in range(ok):
        status, _ = get_via_proxy(outbound, f"http://{REVIEWS}/", headers=headers)
        assert status == 200
    set_knobs(app, {"error_rate": 1, "error_code": 500})
    try:
        for _ in range(failed):
            status, _ = get_via_proxy(outbound, f"http://{REVIEWS}/", headers=headers)
            assert status == 500
    finally:
        set_knobs(app, {"error_rate": 0})
