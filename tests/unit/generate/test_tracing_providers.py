"""Both tracing providers of MeshConfig generate: a zipkin one used to raise in the generator
(a plain bool where the proto has a BoolValue), found by the whole-type property test."""

from __future__ import annotations

import pytest
from envoy.config.listener.v3 import listener_pb2
from envoy.config.trace.v3 import opentelemetry_pb2, zipkin_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from shoal.generate import CLUSTER, LISTENER
from shoal.generate.prepared import unpack

from .meshcfg import REVIEWS, generator, sidecar

MESH = """apiVersion: shoal.dev/v1alpha1
kind: MeshConfig
metadata: {{name: mesh, namespace: default}}
spec:
  extensionProviders: [{{name: traces, {kind}: {{service: collector.example.com, port: 9411}}}}]
  defaultProviders: {{tracing: [traces]}}
"""


def _tracers(kind: str) -> tuple[list[hcm_pb2.HttpConnectionManager], list[str]]:
    view = generator(REVIEWS, MESH.format(kind=kind)).view(sidecar())
    found = []
    for res in view.of(LISTENER).values():
        listener = unpack(res, listener_pb2.Listener())
        assert isinstance(listener, listener_pb2.Listener)
        for chain in listener.filter_chains:
            for f in chain.filters:
                hcm = hcm_pb2.HttpConnectionManager()
                if f.typed_config.Unpack(hcm) and hcm.tracing.HasField("provider"):
                    found.append(hcm)
    return found, sorted(n for n in view.of(CLUSTER) if n.startswith("tracing|"))


@pytest.mark.parametrize("kind", ["zipkin", "opentelemetry"])
def test_each_provider_kind_configures_the_sidecars_tracer(kind: str) -> None:
    tracers, clusters = _tracers(kind)
    assert tracers, "no connection manager traces"
    assert clusters == ["tracing|traces|collector.example.com:9411"]
    for hcm in tracers:
        provider = hcm.tracing.provider
        if kind == "zipkin":
            config = zipkin_pb2.ZipkinConfig()
            assert provider.typed_config.Unpack(config)
            assert config.shared_span_context.value is False
            assert config.HasField("shared_span_context")
            assert config.collector_cluster == clusters[0]
        else:
            otel = opentelemetry_pb2.OpenTelemetryConfig()
            assert provider.typed_config.Unpack(otel)
            assert otel.grpc_service.envoy_grpc.cluster_name == clusters[0]


def test_sampling_follows_istios_precedence_mesh_namespace_workload() -> None:
    from shoal.api import ConfigStore
    from shoal.generate.telemetry_policy import CLIENT, SERVER
    from shoal.generate.telemetry_tracing import tracing_policy
    from shoal.model import build_snapshot

    def telemetry(name: str, namespace: str, percent: float, extra: str = "") -> str:
        return (
            "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\n"
            f"metadata: {{name: {name}, namespace: {namespace}}}\n"
            f"spec:\n{extra}  tracing: [{{randomSamplingPercentage: {percent}}}]\n"
        )

    texts = [
        MESH.format(kind="opentelemetry"),
        telemetry("mesh", "istio-system", 10),
        telemetry("ns", "default", 50),
        telemetry("reviews", "default", 100, "  selector: {matchLabels: {app: reviews}}\n"),
    ]
    result = ConfigStore().update({f"f{i}.yaml": t for i, t in enumerate(texts)})
    assert not result.errors, [str(e) for e in result.errors]
    snapshot = build_snapshot("t.1", result.resources)

    def sampling(namespace: str, name: str) -> set[float]:
        policies = [tracing_policy(snapshot, sidecar(namespace, name), s) for s in (CLIENT, SERVER)]
        return {p.sampling for p in policies if p is not None}

    assert sampling("default", "reviews") == {100}  # the workload's own overrides the rest
    assert sampling("default", "ratings") == {50}  # its namespace's
    assert sampling("other", "ratings") == {10}  # the mesh-wide one
