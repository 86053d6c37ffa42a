"""Istio's metrics in generated listeners: labels per side, and the Telemetry API's levels."""

from __future__ import annotations

import subprocess
from pathlib import Path

from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.access_loggers.stats.v3 import stats_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from shoal.api import ConfigStore
from shoal.common import packedlabels
from shoal.generate import ConfigGenerator
from shoal.generate.prepared import LISTENER, unpack
from shoal.generate.telemetry_labels import HTTP_LABELS
from shoal.model import build_snapshot

from .meshcfg import sidecar

ENVOY = Path(__file__).resolve().parents[3] / ".venv" / "bin" / "envoy"

MESH_OFF = """apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  metrics:
  - providers: [{name: prometheus}]
    overrides: [{match: {metric: ALL_METRICS}, disabled: true}]
"""
# the namespace turns request counts back on, the workload drops a label and adds one
NS_ON = """apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: counts, namespace: default}
spec:
  metrics:
  - overrides: [{match: {metric: REQUEST_COUNT, mode: SERVER}, disabled: false}]
"""
WORKLOAD_TAGS = """apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: reviews, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  metrics:
  - overrides:
    - match: {metric: REQUEST_COUNT}
      tagOverrides:
        destination_principal: {operation: REMOVE}
        request_host: {value: "request.host"}
"""


def _gen(*texts: str) -> ConfigGenerator:
    result = ConfigStore().update({f"f{i}.yaml": t for i, t in enumerate(texts)})
    assert not result.errors, [str(e) for e in result.errors]
    return ConfigGenerator(build_snapshot("t.1", result.resources))


def _proxy(name: str = "reviews") -> object:
    meta = {"INBOUND_PORT": "15006", "APP_PORT": "8080", "SERVICE_HOST": f"{name}.default.svc"}
    return sidecar(name=name, **meta)


def _stats(gen: ConfigGenerator, listener: str, name: str = "reviews") -> dict[str, list[str]]:
    """Stat name -> its label names (packed in one tag), of the listener's stats loggers."""
    view = gen.view(_proxy(name))  # type: ignore[arg-type]
    found = unpack(view.of(LISTENER)[listener], listener_pb2.Listener())
    assert isinstance(found, listener_pb2.Listener)
    hcm = hcm_pb2.HttpConnectionManager()
    found.filter_chains[0].filters[0].typed_config.Unpack(hcm)
    out: dict[str, list[str]] = {}
    for log in hcm.access_log:
        config = stats_pb2.Config()
        log.typed_config.Unpack(config)
        for stat in [*(c.stat for c in config.counters), *(h.stat for h in config.histograms)]:
            assert [t.name for t in stat.tags] == [packedlabels.TAG]
            out[stat.name] = list(packedlabels.unpack(stat.tags[0].value_format))
    return out


def test_both_sides_report_every_istio_metric_with_every_label() -> None:
    gen = _gen()
    for listener in ("outbound_http", "inbound_http"):
        stats = _stats(gen, listener)
        assert set(stats) == {
            "requests_total",
            "request_duration_milliseconds",
            "request_bytes",
            "response_bytes",
        }
        assert all(tags == list(HTTP_LABELS) for tags in stats.values())


def test_telemetry_levels_mesh_then_namespace_then_workload() -> None:
    gen = _gen(MESH_OFF)
    assert _stats(gen, "outbound_http") == {} and _stats(gen, "inbound_http") == {}
    gen = _gen(MESH_OFF, NS_ON)
    assert _stats(gen, "outbound_http") == {}
    assert list(_stats(gen, "inbound_http")) == ["requests_total"]
    gen = _gen(MESH_OFF, NS_ON, WORKLOAD_TAGS)
    tags = _stats(gen, "inbound_http")["requests_total"]
    assert "destination_principal" not in tags and tags[-1] == "request_host"
    # another workload of the namespace keeps the namespace's policy, untouched labels
    assert _stats(gen, "inbound_http", "ratings")["requests_total"] == list(HTTP_LABELS)


def _filters(gen: ConfigGenerator, listener: str) -> list[str]:
    view = gen.view(_proxy())  # type: ignore[arg-type]
    found = unpack(view.of(LISTENER)[listener], listener_pb2.Listener())
    assert isinstance(found, listener_pb2.Listener)
    hcm = hcm_pb2.HttpConnectionManager()
    found.filter_chains[0].filters[0].typed_config.Unpack(hcm)
    return [f.name for f in hcm.http_filters]


PEER, PROTOCOL = "shoal.peer_identity", "shoal.request_protocol"


def test_peer_filters_go_when_no_metric_would_read_them() -> None:
    """The peer headers and their parsing exist for the metrics' labels: with the metrics
    off mesh-wide no request pays for them; a namespace counting server metrics again gets
    its callers' headers back (every sidecar states them) and parses them."""
    on = _gen()
    assert {PEER, PROTOCOL} <= set(_filters(on, "outbound_http"))
    assert PEER in _filters(on, "inbound_http")
    off = _gen(MESH_OFF)
    assert {PEER, PROTOCOL}.isdisjoint(_filters(off, "outbound_http"))
    assert PEER not in _filters(off, "inbound_http")
    again = _gen(MESH_OFF, NS_ON)  # server-side request counts back on in `default`
    assert PEER in _filters(again, "outbound_http") and PEER in _filters(again, "inbound_http")
    assert PROTOCOL not in _filters(again, "outbound_http")  # client side still off


def test_unimplemented_telemetry_fields_are_refused_as_such() -> None:
    text = MESH_OFF + "  targetRefs: [{kind: Gateway, name: gw}]\n"
    result = ConfigStore().update({"t.yaml": text})
    (error,) = result.errors
    assert "spec.targetRefs" in str(error) and "does not implement yet" in str(error)
    text = MESH_OFF + "  tracing: [{customTags: {a: {literal: {value: b}}}}]\n"
    assert not ConfigStore().update({"t.yaml": text}).errors  # implemented
    text = MESH_OFF + "  tracing: [{customTags: {a: {formatter: {value: b}}}}]\n"
    (error,) = ConfigStore().update({"t.yaml": text}).errors
    assert "spec.tracing[0].customTags.a.formatter" in str(error), str(error)
    # a CEL syntax error in an access log filter is the field's error, not Envoy's NACK
    text = MESH_OFF + "  accessLogging: [{filter: {expression: 'response.code >='}}]\n"
    (error,) = ConfigStore().update({"t.yaml": text}).errors
    assert "spec.accessLogging[0].filter.expression" in str(error), str(error)


def _mesh_config(extra: str) -> str:
    return f"""apiVersion: shoal.dev/v1alpha1
kind: MeshConfig
metadata: {{name: mesh, namespace: istio-system}}
spec:
{extra}"""


LOGS_OFF_FOR_REVIEWS = """apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: quiet, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  accessLogging: [{match: {mode: SERVER}, disabled: true}]
"""


def _file_logs(gen: ConfigGenerator, listener: str, name: str = "reviews") -> list[object]:
    from envoy.extensions.access_loggers.file.v3 import file_pb2

    view = gen.view(_proxy(name))  # type: ignore[arg-type]
    found = unpack(view.of(LISTENER)[listener], listener_pb2.Listener())
    assert isinstance(found, listener_pb2.Listener)
    hcm = hcm_pb2.HttpConnectionManager()
    found.filter_chains[0].filters[0].typed_config.Unpack(hcm)
    out: list[object] = []
    for log in hcm.access_log:
        if log.name == "envoy.access_loggers.file":
            config = file_pb2.FileAccessLog()
            log.typed_config.Unpack(config)
            out.append(config)
    return out


def test_access_logs_switched_by_meshconfig_and_telemetry() -> None:
    assert _file_logs(_gen(), "outbound_http") == []
    gen = _gen(_mesh_config("  accessLogFile: /dev/stdout\n  accessLogEncoding: JSON\n"))
    (client,) = _file_logs(gen, "outbound_http")
    assert client.path == "/dev/stdout"  # type: ignore[attr-defined]
    fields = dict(client.log_format.json_format)  # type: ignore[attr-defined]
    assert fields["request_id"] == "%REQ(X-REQUEST-ID)%" and len(fields) == 24
    assert len(_file_logs(gen, "inbound_http")) == 1
    # the workload turns its server side off; the client side and other workloads keep theirs
    gen = _gen(_mesh_config("  accessLogFile: /var/log/mesh.log\n"), LOGS_OFF_FOR_REVIEWS)
    assert _file_logs(gen, "inbound_http") == []
    (text,) = _file_logs(gen, "outbound_http")
    assert text.path == "/var/log/mesh.log"  # type: ignore[attr-defined]
    assert text.log_format.text_format_source.inline_string.startswith("[%START_TIME%]")  # type: ignore[attr-defined]
    assert len(_file_logs(gen, "inbound_http", "ratings")) == 1


def test_envoy_accepts_both_access_log_formats(tmp_path: Path) -> None:
    from envoy.config.bootstrap.v3 import bootstrap_pb2
    from envoy.extensions.filters.http.router.v3 import router_pb2

    from shoal.generate.telemetry_accesslog import file_access_logs
    from shoal.generate.telemetry_policy import CLIENT, AccessLogPolicy

    boot = bootstrap_pb2.Bootstrap()
    for i, encoding in enumerate(("TEXT", "JSON")):
        hcm = hcm_pb2.HttpConnectionManager(stat_prefix=f"l{i}")
        hcm.route_config.name = "r"
        router = hcm.http_filters.add(name="envoy.filters.http.router")
        router.typed_config.Pack(router_pb2.Router())
        policy = AccessLogPolicy(client=str(tmp_path / "access.log"), encoding=encoding)
        hcm.access_log.extend(file_access_logs(policy, CLIENT))
        listener = boot.static_resources.listeners.add(name=f"l{i}")
        listener.address.socket_address.address = "127.0.0.1"
        listener.address.socket_address.port_value = 10000 + i
        chain = listener.filter_chains.add()
        chain.filters.add(name="envoy.filters.network.http_connection_manager").typed_config.Pack(
            hcm
        )
    path = tmp_path / "boot.pb"
    path.write_bytes(boot.SerializeToString())
    proc = subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", str(path), "-l", "error"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
