"""B3 traces through real sidecars into a Zipkin collector (Zipkin v2 JSON over HTTP).

`client -> front -> back` under `shoal up` with MeshConfig's `zipkin` provider: the client
app sends a request carrying a B3 context (`x-b3-traceid`, `x-b3-spanid`, `x-b3-sampled`).
The trace keeps its id through both sidecars of each hop, the apps receive B3 (and W3C)
headers for it, and the collector gets four spans -- each hop's caller sidecar (CLIENT) and
callee sidecar (SERVER) -- that join into one chain under the client's span, named by service.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.configdir import ConfigDir
from harness.up import ShoalUp, get_via_proxy
from harness.wait import wait_until
from harness.zipkin import Collector, Span

pytestmark = pytest.mark.envoy

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"


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


def _mesh(collector_port: int) -> str:
    return (
        _workload("client", None)
        + _workload("front", "back")
        + _workload("back", None)
        + f"""apiVersion: shoal.dev/v1alpha1
kind: MeshConfig
metadata: {{name: mesh, namespace: istio-system}}
spec:
  extensionProviders:
  - name: zipkin
    zipkin: {{service: 127.0.0.1, port: {collector_port}}}
  defaultProviders: {{tracing: [zipkin]}}
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {{name: mesh-default, namespace: istio-system}}
spec:
  tracing: [{{randomSamplingPercentage: 100}}]
"""
    )


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    server = Collector().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory, collector: Collector) -> Iterator[ShoalUp]:
    tmp = tmp_path_factory.mktemp("zipkin")
    folder = ConfigDir(tmp / "mesh")
    folder.write("mesh.yaml", _mesh(collector.port))
    up = ShoalUp(folder.path, tmp, name="zipkin-up", extra_args=["--no-status"])
    up.start()
    try:
        up.wait_ready(3)
        yield up
    finally:
        print(up.describe())
        up.stop()


def test_a_b3_request_through_two_hops_is_one_zipkin_trace(
    mesh: ShoalUp, collector: Collector
) -> None:
    outbound = mesh.replica("client-0")["ports"]["outbound"]
    b3 = {"x-b3-traceid": TRACE_ID, "x-b3-spanid": SPAN_ID, "x-b3-sampled": "1"}
    status, body = get_via_proxy(outbound, "http://front.default.svc.cluster.local/", headers=b3)
    assert status == 200, body

    # B3 reached both apps with the caller's trace id, each hop with a new span of its sidecars
    received = [body["headers"], body["upstreams"][0]["headers"]]
    for headers in received:
        assert headers["x-b3-traceid"] == TRACE_ID, headers
        assert headers["x-b3-spanid"] not in ("", SPAN_ID), headers
        assert headers["x-b3-sampled"] == "1", headers
        assert headers["traceparent"].split("-")[1] == TRACE_ID, headers  # W3C beside B3
    assert received[0]["x-b3-spanid"] != received[1]["x-b3-spanid"]

    def complete() -> list[Span] | None:
        spans = [s for s in collector.spans() if s.trace_id == TRACE_ID]
        return spans if len(spans) >= 4 else None

    spans = wait_until(complete, 20, interval=0.5, what="4 spans of the trace at the collector",
                       describe=lambda: f"{collector.spans()} {collector.rejected}")  # fmt: skip
    assert not collector.rejected, collector.rejected
    assert len(spans) == 4, spans
    (first,) = [s for s in spans if s.parent_id == SPAN_ID]  # the client app's span is parent
    chain = [first]
    while len(chain) < len(spans):
        (child,) = [s for s in spans if s.parent_id == chain[-1].span_id]
        chain.append(child)
    assert [(s.service, s.kind) for s in chain] == [
        ("client.default", "CLIENT"),
        ("front.default", "SERVER"),
        ("front.default", "CLIENT"),
        ("back.default", "SERVER"),
    ], [(s.service, s.kind, s.name, s.tags.get("upstream_cluster")) for s in chain]
    assert all(s.tags.get("http.status_code") == "200" for s in spans), spans
    # the span the back app saw in its headers is its own sidecar's (SERVER) span
    assert received[1]["x-b3-spanid"] == chain[3].span_id
    assert received[0]["x-b3-spanid"] == chain[1].span_id
