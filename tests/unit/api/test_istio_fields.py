"""Every field of Istio's API (the `istio/api` protos' field list, istioapi/fields.json) is
either implemented, with a real-Envoy test that exercises it, or refused as "not implemented
yet" naming it; never accepted and ignored, never called an unknown field.

For each field of each kind shoal supports, walking shoal's models by the field's path:
- a field the model lacks must be one `api/unimplemented.py` lists, and loading a document
  that sets it must give the "does not implement yet" error at that very field;
- a field the model has must fall in a section of `BEHAVIOUR` (kind, path prefix -> the e2e
  or real-Envoy property tests of that section) whose files name the field, or be refused
  for the values shoal lacks (`PARTLY`, each with the value tried), or be one of the listed
  `KNOWN_GAPS` (implemented, checked by generate's unit tests and `envoy --mode validate`,
  but with no real-Envoy behaviour test yet). The test prints how many fields are in each.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from shoal.api import KINDS, parse_file
from shoal.api.kinds import KIND_SPECS
from shoal.api.unimplemented import is_not_implemented

HERE = Path(__file__).parent
TESTS = HERE.parents[1]
DATA = json.loads((HERE / "istioapi" / "fields.json").read_text(encoding="utf-8"))
GAPS = json.loads((HERE / "istioapi" / "known_gaps.json").read_text(encoding="utf-8"))

# (kind, path prefix) -> real-Envoy tests of that section (under tests/): the longest prefix
# of a field's path decides, and one of its files must name the field
E2E = "e2e/"
# the e2e tests' shared scenarios write part of their YAML (harness/mesh.py: the reviews
# ServiceEntry, DestinationRule and VirtualService)
MESH = ("harness/mesh.py", "harness/drmesh.py")
BEHAVIOUR: dict[tuple[str, str], tuple[str, ...]] = {
    ("VirtualService", ""): (E2E + "test_match.py", E2E + "test_edges_gateway.py", *MESH),
    ("VirtualService", "http[].match[]"): (
        E2E + "test_match.py",
        E2E + "test_route_actions.py",
        "property/test_envoy_serves_http_fields.py",
    ),
    ("VirtualService", "http[].route[]"): (
        E2E + "test_split.py",
        E2E + "test_match.py",
        E2E + "test_route_actions.py",
        *MESH,
    ),
    ("VirtualService", "http[]"): (E2E + "test_route_actions.py", E2E + "test_route_retries.py"),
    ("VirtualService", "http[].headers"): (
        E2E + "test_route_actions.py",
        "property/test_envoy_serves_http_fields.py",
    ),
    ("VirtualService", "http[].rewrite"): (
        E2E + "test_route_actions.py",
        "property/test_envoy_serves_http_fields.py",
    ),
    ("VirtualService", "tcp[]"): (E2E + "test_edges_tcp.py",),
    ("VirtualService", "tls[]"): (E2E + "test_edges_passthrough.py",),
    ("DestinationRule", ""): (E2E + "test_match.py", E2E + "test_destination_lb.py", *MESH),
    ("DestinationRule", "trafficPolicy.loadBalancer"): (E2E + "test_destination_lb.py",),
    ("DestinationRule", "trafficPolicy.connectionPool"): (E2E + "test_destination_resilience.py",),
    ("DestinationRule", "trafficPolicy.outlierDetection"): (
        E2E + "test_destination_resilience.py",
    ),
    ("DestinationRule", "trafficPolicy.retryBudget"): (E2E + "test_destination_resilience.py",),
    ("DestinationRule", "trafficPolicy.tls"): (
        E2E + "test_security_mtls.py",
        E2E + "test_destination_tls_credential.py",
    ),
    ("DestinationRule", "trafficPolicy.portLevelSettings[].tls"): (
        E2E + "test_security_mtls.py",
        E2E + "test_destination_tls_credential.py",
    ),
    ("Gateway", ""): (
        E2E + "test_edges_gateway.py",
        E2E + "test_edges_tcp.py",
        E2E + "test_edges_passthrough.py",
    ),
    ("ServiceEntry", ""): (E2E + "test_edges_outbound.py", E2E + "test_edges_tcp.py", *MESH),
    ("WorkloadEntry", ""): (E2E + "test_file_kubernetes.py", E2E + "test_incremental_eds.py"),
    ("Sidecar", ""): (E2E + "test_edges_outbound.py",),
    ("WorkloadGroup", ""): (E2E + "test_multihost.py",),
    ("AuthorizationPolicy", ""): (
        E2E + "test_security_authz.py",
        E2E + "test_security_gateway_policy.py",
        "harness/policies.py",
    ),
    ("PeerAuthentication", ""): (E2E + "test_security_mtls.py", "harness/secmesh.py"),
    ("RequestAuthentication", ""): (
        E2E + "test_security_authz.py",
        E2E + "test_security_jwks_fetch.py",
        E2E + "test_security_jwt_sources.py",
        E2E + "test_security_gateway_policy.py",
        "harness/policies.py",
    ),
    ("Telemetry", ""): (
        E2E + "test_telemetry_tracing.py",
        E2E + "test_telemetry_otel_logs.py",
        E2E + "test_telemetry_metrics.py",
        E2E + "test_telemetry_prometheus.py",
    ),
}
# fields implemented for some values only: the value tried must be refused as not implemented
PARTLY: dict[tuple[str, str], Any] = {
    ("VirtualService", "exportTo[]"): ["."],
    ("DestinationRule", "exportTo[]"): ["."],
}


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _field(model: type[BaseModel], name: str) -> FieldInfo | None:
    for attr, info in model.model_fields.items():
        if (info.alias or attr) == name:
            return info
    return None


def _name(segment: str) -> str:
    return segment.removesuffix("{}").removesuffix("[]")


def _document(kind: str, path: str, value: Any) -> str:
    """A document of `kind` setting only `path` (lists of one, maps of key `k`) to `value`."""
    for segment in reversed(path.split(".")):
        if segment.endswith("{}"):
            value = {"k": value}
        if segment.endswith("[]"):
            value = [value]
        value = {_name(segment): value}
    spec = KIND_SPECS[kind]
    return json.dumps(
        {
            "apiVersion": spec.api_versions[0],
            "kind": kind,
            "metadata": {"name": "x", "namespace": "default"},
            "spec": value,
        }
    )


def _rendered(path: str) -> str:
    """`path` as shoal's errors print it (`spec.http[0].fault`)."""
    out = "spec"
    for segment in path.split("."):
        out += "." + _name(segment)
        if segment.endswith("{}"):
            out += ".k"
        if segment.endswith("[]"):
            out += "[0]"
    return out


def _classify(kind: str, path: str) -> str:
    """ "refused" (the field or a parent is not implemented), "model" (shoal has it)."""
    model = KINDS[kind]
    segments = path.split(".")
    for i, segment in enumerate(segments):
        info = _field(model, _name(segment))
        if info is None:
            assert is_not_implemented(model, _name(segment)), (
                f"{kind} {path}: {'.'.join(segments[: i + 1])} is valid Istio, but shoal "
                "neither has it nor refuses it as not implemented (add it to unimplemented.py)"
            )
            return "refused" if i == len(segments) - 1 else "under-refused"
        inner = _models(info.annotation)
        if i < len(segments) - 1:
            assert inner, f"{kind} {path}: shoal's {segment} holds no fields"
            model = inner[0]
    return "model"


def _evidence(kind: str, path: str) -> tuple[str, ...]:
    sections = [p for k, p in BEHAVIOUR if k == kind and path.startswith(p)]
    if not sections:  # a kind with no real-Envoy section yet: each of its fields is a gap
        return ()
    return BEHAVIOUR[(kind, max(sections, key=len))]


_TEXTS: dict[str, str] = {}


def _mentions(files: tuple[str, ...], name: str) -> bool:
    for rel in files:
        if rel not in _TEXTS:
            _TEXTS[rel] = (TESTS / rel).read_text(encoding="utf-8")
        if name in _TEXTS[rel]:
            return True
    return False


def test_the_data_is_istios_field_list() -> None:
    assert DATA["source"] == "github.com/istio/api" and len(DATA["commit"]) == 40
    assert set(DATA["kinds"]) <= set(KINDS)
    for files in BEHAVIOUR.values():
        for rel in files:
            assert (TESTS / rel).is_file(), rel


def test_every_istio_field_is_implemented_with_a_test_or_refused() -> None:
    counts = {"behaviour": 0, "partly": 0, "gap": 0, "refused": 0, "under-refused": 0}
    gaps: set[str] = set()
    for kind, paths in DATA["kinds"].items():
        for path in paths:
            status = _classify(kind, path)
            if status != "model":
                counts[status] += 1
                continue
            if (kind, path) in PARTLY:
                counts["partly"] += 1
                continue
            leaf = _name(path.split(".")[-1])
            if _mentions(_evidence(kind, path), leaf):
                counts["behaviour"] += 1
            else:
                gaps.add(f"{kind} {path}")
    counts["gap"] = len(gaps)
    print(f"\nIstio API fields ({DATA['commit'][:10]}): {counts}")
    unlisted = sorted(gaps - set(GAPS))
    assert not unlisted, (
        "implemented but no real-Envoy test names these (add one, or list them in "
        "known_gaps.json): " + ", ".join(unlisted)
    )
    covered = sorted(set(GAPS) - gaps)
    assert not covered, "now covered by a test or refused, remove from known_gaps.json: " + (
        ", ".join(covered)
    )


def _refused_fields() -> list[tuple[str, str]]:
    out = []
    for kind, paths in DATA["kinds"].items():
        out += [(kind, p) for p in paths if _classify(kind, p) == "refused"]
    return out


@pytest.mark.parametrize(("kind", "path"), _refused_fields())
def test_a_field_shoal_lacks_is_refused_as_not_implemented_where_it_is(
    kind: str, path: str
) -> None:
    _, errors = parse_file("f.yaml", _document(kind, path, {}))
    field = _rendered(path).removesuffix(".k").removesuffix("[0]")
    said = [e for e in errors if e.field == field]
    assert said and "does not implement yet" in said[0].message, (field, errors)


@pytest.mark.parametrize(("kind", "path"), sorted(PARTLY))
def test_values_shoal_lacks_are_refused_as_not_implemented(kind: str, path: str) -> None:
    _, errors = parse_file("f.yaml", _document(kind, path.removesuffix("[]"), PARTLY[kind, path]))
    assert any("not implemented yet" in e.message and _name(path) in e.message for e in errors)
