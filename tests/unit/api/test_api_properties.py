"""Property tests: any valid VirtualService we can generate loads, and loads faithfully."""

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal.api import VirtualServiceSpec, parse_file

_names = st.from_regex(r"[a-z][a-z0-9-]{0,8}[a-z0-9]", fullmatch=True)


@st.composite
def _weights(draw: st.DrawFn) -> list[int]:
    count = draw(st.integers(1, 4))
    if count == 1:
        return [draw(st.sampled_from([0, 100]))]
    cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=count - 1, max_size=count - 1)))
    return [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]


@st.composite
def _http_route(draw: st.DrawFn) -> dict[str, Any]:
    route = [
        {"destination": {"host": draw(_names), "subset": draw(_names)}, "weight": weight}
        for weight in draw(_weights())
    ]
    result: dict[str, Any] = {"route": route}
    if draw(st.booleans()):
        kind = draw(st.sampled_from(["exact", "prefix", "regex"]))
        result["match"] = [{"uri": {kind: "/" + draw(_names)}}]
    if draw(st.booleans()):
        result["timeout"] = f"{draw(st.integers(1, 600))}s"
    return result


@st.composite
def _virtual_service(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "apiVersion": draw(
            st.sampled_from(["networking.istio.io/v1", "networking.istio.io/v1beta1"])
        ),
        "kind": "VirtualService",
        "metadata": {"name": draw(_names), "namespace": draw(_names)},
        "spec": {
            "hosts": [draw(_names)],
            "http": draw(st.lists(_http_route(), min_size=1, max_size=4)),
        },
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_virtual_service(), min_size=1, max_size=3), st.booleans())
def test_generated_virtual_services_load(docs: list[dict[str, Any]], flow: bool) -> None:
    text = yaml.safe_dump_all(docs, default_flow_style=flow, sort_keys=False)
    resources, errors = parse_file("gen.yaml", text)
    assert errors == []
    assert len(resources) == len(docs)
    for resource, doc in zip(resources, docs, strict=True):
        assert isinstance(resource.spec, VirtualServiceSpec)
        for route, raw in zip(resource.spec.http, doc["spec"]["http"], strict=True):
            weights = [d["weight"] for d in raw["route"]]
            assert [d.weight for d in route.route] == (weights if len(weights) > 1 else [100])
            assert sum(d.weight for d in route.route) == 100


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_virtual_service(), st.data())
def test_any_misspelt_field_is_reported_at_its_line(
    doc: dict[str, Any], data: st.DataObject
) -> None:
    route = data.draw(st.sampled_from(doc["spec"]["http"]))
    route["timeuot"] = "1s"
    text = yaml.safe_dump(doc, sort_keys=False)
    _, errors = parse_file("gen.yaml", text)
    (error,) = errors
    index = doc["spec"]["http"].index(route)
    assert error.field == f"spec.http[{index}].timeuot"
    assert text.splitlines()[error.line - 1].strip().startswith("timeuot:")
    assert "did you mean 'timeout'" in error.message
