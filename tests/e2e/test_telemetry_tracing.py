"""Traces through real sidecars into a collector that speaks the real OTLP/gRPC protocol.

`client -> front -> mid -> back` under `shoal up`, each app forwarding the trace headers:
one request makes one trace of six spans (each hop's caller and callee sidecar), each span
the child of the one before, named by its service, with the HTTP status. Then the sampling
percentage (a Telemetry edit, live) is honoured within statistical bounds.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator

import pytest

from harness.configdir import ConfigDir
from harness.otlp import Collector, Span
from harness.up import ShoalUp, get_via_proxy
from harness.wait import wait_until

pytestmark = pytest.mark.envoy


def _workload(name: str, upstream: str | None) -> str:
    command = '["python", "-m", "shoal.samples.service"'
    if upstream:
        command += f', "--upstreams", "http://{upstream}/"'
    return f"""apiVersion: shoal.dev/v1alpha1
kind: LocalWorkload
metadata: {{name: {name}, namespace: default}}
spec:
  service: {name}
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  labels: {{app: {name}, version: v1}}
  replicas: 1
  command: {command}]
---
"""


def _telemetry(percent: float) -> str:
    return f"""apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {{name: mesh-default, namespace: istio-system}}
spec:
  tracing: [{{randomSamplingPercentage: {percent}}}]
"""


def _mesh(collector_port: int) -> str:
    return (
        _workload("client", None)
        + _workload("front", "mid")
        + _workload("mid", "back")
        + _workload("back", None)
        + f"""apiVersion: shoal.dev/v1alpha1
kind: MeshConfig
metadata: {{name: mesh, namespace: istio-system}}
spec:
  extensionProviders:
  - name: otel
    opentelemetry: {{service: 127.0.0.1, port: {collector_port}}}
  defaultProviders: {{tracing: [otel]}}
"""
    )


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    server = Collector().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory, collector: Collector) -> Iterator[ShoalUp]:
    tmp = tmp_path_factory.mktemp("tracing")
    folder = ConfigDir(tmp / "mesh")
    folder.write("mesh.yaml", _mesh(collector.port))
    folder.write("telemetry.yaml", _telemetry(100))
    up = ShoalUp(folder.path, tmp, name="tracing-up", extra_args=["--no-status"])
    up.start()
    up.config = folder  # type: ignore[attr-defined]
    try:
        up.wait_ready(4)
        yield up
    finally:
        print(up.describe())
        up.stop()


def _traces(spans: list[Span]) -> dict[str, list[Span]]:
    out: dict[str, list[Span]] = {}
    for s in spans:
        out.setdefault(s.trace_id, []).append(s)
    return out


def test_one_request_through_three_services_is_one_trace(
    mesh: ShoalUp, collector: Collector
) -> None:
    outbound = mesh.replica("client-0")["ports"]["outbound"]
    status, body = get_via_proxy(outbound, "http://front.default.svc.cluster.local/")
    assert status == 200, body

    def complete() -> list[Span] | None:
        traces = [t for t in _traces(collector.spans()).values() if len(t) >= 6]
        return traces[0] if traces else None

    spans = wait_until(complete, 20, interval=0.5, what="a trace of 6 spans at the collector")
    assert len(_traces(collector.spans())) == 1, collector.spans()
    assert len(spans) == 6
    by_id = {s.span_id: s for s in spans}
    (root,) = [s for s in spans if not s.parent_span_id]
    chain = [root]
    while len(chain) < len(spans):
        (child,) = [s for s in spans if s.parent_span_id == chain[-1].span_id]
        chain.append(child)
    assert [s.service for s in chain] == [
        "client.default",
        "front.default",
        "front.default",
        "mid.default",
        "mid.default",
        "back.default",
    ]
    assert all(s.parent_span_id in by_id for s in chain[1:])
    assert all(s.attributes.get("http.status_code") == "200" for s in spans), spans
    assert all(s.status_code != 2 for s in spans)  # not STATUS_CODE_ERROR


def test_sampling_percentage_is_honoured(mesh: ShoalUp, collector: Collector) -> None:
    before = set(_traces(collector.spans()))
    mesh.config.write("telemetry.yaml", _telemetry(50))  # type: ignore[attr-defined]

    outbound = mesh.replica("client-0")["ports"]["outbound"]

    def applied() -> bool:
        # the client's outbound listener carries the new percentage once its LDS is ACKed

        port = mesh.replica("client-0")["ports"]["admin"]
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/config_dump?resource=dynamic_listeners", timeout=5
        ) as resp:
            return '"value": 50' in json.dumps(json.loads(resp.read()))

    wait_until(applied, 15, interval=0.3, what="the 50 % sampling in the client's listener")
    n = 100
    for _ in range(n):
        status, _ = get_via_proxy(outbound, "http://back.default.svc.cluster.local/")
        assert status == 200
    # binomial(100, 0.5): sd 5; 4.5 sd either side
    low, high = 27, 73

    def settled() -> int | None:
        new = {
            t: s
            for t, s in _traces(collector.spans()).items()
            if t not in before and any(x.service == "back.default" for x in s)
        }
        return len(new) if len(new) >= low else None

    sampled = wait_until(settled, 20, interval=0.5, what=f"at least {low} sampled traces")
    time.sleep(6)  # a last flush of the tracers may still be on its way: one more interval
    new = {
        t
        for t, s in _traces(collector.spans()).items()
        if t not in before and any(x.service == "back.default" for x in s)
    }
    assert low <= len(new) <= high, (sampled, len(new))


def test_custom_tags_become_span_attributes(mesh: ShoalUp, collector: Collector) -> None:
    # istio.io's OpenTelemetry tracing task: a literal tag; and a request header's value
    mesh.config.write(
        "telemetry.yaml",
        """apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  tracing:
  - randomSamplingPercentage: 100
    customTags:
      "my-attribute":
        literal:
          value: "default-value"
      "user-tier":
        header: {name: x-user-tier, defaultValue: none}
      "proxy-env":
        environment: {name: SHOAL_TEST_UNSET_VARIABLE, defaultValue: unset}
""",
    )  # type: ignore[attr-defined]
    outbound = mesh.replica("client-0")["ports"]["outbound"]

    def tagged() -> Span | None:
        status, _ = get_via_proxy(
            outbound, "http://back.default.svc.cluster.local/", headers={"x-user-tier": "gold"}
        )
        assert status == 200
        found = [s for s in collector.spans() if s.attributes.get("user-tier") == "gold"]
        return found[0] if found else None

    span = wait_until(tagged, 30, interval=0.5, what="a span with the custom tags")
    assert span.attributes["my-attribute"] == "default-value", span
    assert span.attributes["proxy-env"] == "unset", span  # the proxy has no such variable
