"""Access logs as OpenTelemetry log records, through a real sidecar into a collector speaking
the real OTLP/gRPC LogsService: MeshConfig `extensionProviders[].envoyOtelAls` and Telemetry
`accessLogging[].providers` with the YAML of istio.io's OpenTelemetry logging task, then a
workload's `filter` (a CEL expression) and `disabled` for that provider.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable

import pytest

from harness.configdir import ConfigDir
from harness.mesh import HOST, Mesh
from harness.otlp import LogsCollector
from harness.wait import wait_until

pytestmark = pytest.mark.envoy


def _mesh_config(port: int) -> str:
    return f"""apiVersion: shoal.dev/v1alpha1
kind: MeshConfig
metadata: {{name: mesh, namespace: istio-system}}
spec:
  extensionProviders:
  - name: otel
    envoyOtelAls:
      service: 127.0.0.1
      port: {port}
      logName: shoal-test
      logFormat: {{labels: {{code: "%RESPONSE_CODE%", path: "%REQ(:PATH)%"}}}}
"""


# istio.io tasks/observability/logs/telemetry-api: mesh-logging-default, as the page has it
MESH_LOGGING = """apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata:
  name: mesh-logging-default
  namespace: istio-system
spec:
  accessLogging:
  - providers:
    - name: otel
"""


def _workload_logging(body: str) -> str:
    return f"""apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {{name: productpage-logging, namespace: default}}
spec:
  selector: {{matchLabels: {{app: productpage}}}}
  accessLogging:
  - providers: [{{name: otel}}]
{body}"""


def test_otel_provider_sends_records_filter_selects_and_disabled_stops(
    mesh: Mesh, config_dir: ConfigDir, request: pytest.FixtureRequest
) -> None:
    collector = LogsCollector().start()
    request.addfinalizer(collector.stop)
    config_dir.write("meshconfig.yaml", _mesh_config(collector.port))
    mesh.start()
    sidecar = mesh.sidecar()
    mesh.wait_routes(sidecar, {"v1"})
    assert collector.records() == []  # baseline: no Telemetry names the provider

    config_dir.write("telemetry.yaml", MESH_LOGGING)

    def sent(path: str) -> Callable[[], bool]:
        def probe() -> bool:
            fire_one(sidecar.outbound_port, path)
            return any(r.attributes.get("path") == path for r in collector.records())

        return probe

    wait_until(sent("/first"), 20, interval=0.3, what="a log record for /first")
    record = next(r for r in collector.records() if r.attributes["path"] == "/first")
    assert record.resource.get("log_name") == "shoal-test", record
    assert record.attributes["code"] == "200"
    # the body is Istio's default text format
    assert '"GET /first HTTP/1.1" 200' in record.body and HOST in record.body

    # only what the workload's filter is true for is logged from it
    config_dir.write("workload.yaml", _workload_logging(
        "    filter: {expression: \"request.path.startsWith('/kept')\"}\n"
    ))  # fmt: skip
    wait_until(sent("/kept/1"), 20, interval=0.3, what="a record through the filter")
    count = len(collector.records())
    for _ in range(5):
        fire_one(sidecar.outbound_port, "/dropped")
    fire_one(sidecar.outbound_port, "/kept/2")
    wait_until(
        lambda: any(r.attributes["path"] == "/kept/2" for r in collector.records()), 15,
        what="the /kept/2 record",
    )  # fmt: skip
    assert not any(r.attributes["path"] == "/dropped" for r in collector.records()[count:])

    # disabled for that provider: nothing more from this workload
    config_dir.write("workload.yaml", _workload_logging("    disabled: true\n"))

    def quiet() -> bool:
        before = len(collector.records())
        for _ in range(3):
            fire_one(sidecar.outbound_port, "/kept/quiet")
        # Envoy's OTel logger flushes each second: wait past it before counting
        return wait_quiet(collector, before)

    wait_until(quiet, 30, interval=0.5, what="no more records once disabled")


def fire_one(port: int, path: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    try:
        conn.request("GET", path, headers={"Host": HOST})
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def wait_quiet(collector: LogsCollector, before: int) -> bool:
    time.sleep(2.5)
    return len(collector.records()) == before
