"""SMI kinds from files: TrafficSplit accepted and checked (its routing through Envoy:
e2e/test_smi_trafficsplit.py), TrafficTarget and HTTPRouteGroup refused as not implemented."""

from __future__ import annotations

import pytest

from shoal.api import parse_file
from shoal.api.kinds import is_not_implemented_message
from shoal.api.smi.trafficsplit import TrafficSplitSpec
from shoal.model.smi import translate


def _split(spec: str) -> str:
    return (
        "apiVersion: split.smi-spec.io/v1alpha2\nkind: TrafficSplit\n"
        f"metadata: {{name: s, namespace: shop}}\nspec: {spec}\n"
    )


def test_a_split_becomes_the_weighted_virtual_service() -> None:
    resources, errors = parse_file(
        "s.yaml",
        _split("{service: web, backends: [{service: a, weight: 1}, {service: b, weight: 2}]}"),
    )
    assert errors == []
    (vs,) = translate(resources)
    assert (vs.kind, vs.meta.namespace, vs.meta.name) == ("VirtualService", "shop", "s.smi")
    assert vs.spec.hosts == ["web.shop.svc.cluster.local"]  # type: ignore[union-attr]
    route = vs.spec.http[0].route  # type: ignore[union-attr]
    assert [(d.destination.host, d.weight) for d in route] == [
        ("a.shop.svc.cluster.local", 33),
        ("b.shop.svc.cluster.local", 67),
    ]


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ((1, 1, 1), [34, 33, 33]),
        ((500, 500), [50, 50]),
        ((0, 7), [100]),
        ((2, 1, 1), [50, 25, 25]),
    ],
)
def test_weights_become_percentages_adding_up_to_100(
    weights: tuple[int, ...], expected: list[int]
) -> None:
    spec = TrafficSplitSpec.model_validate(
        {
            "service": "w",
            "backends": [{"service": f"b{i}", "weight": w} for i, w in enumerate(weights)],
        }
    )
    got = [p for _, p in spec.percentages()]
    assert got == expected and sum(got) == 100


def test_bad_splits_name_the_field() -> None:
    for spec, field in [
        ("{service: web, backends: [{service: a, weight: 0}]}", "spec.backends"),
        ("{service: web, backends: [{service: a, weight: -1}]}", "spec.backends[0].weight"),
        ("{service: web, backends: []}", "spec.backends"),
        ("{service: Web_1, backends: [{service: a, weight: 1}]}", "spec.service"),
    ]:
        _, errors = parse_file("s.yaml", _split(spec))
        assert [e.field for e in errors] == [field], (spec, errors)
    _, (error,) = parse_file(
        "s.yaml",
        _split(
            "{service: w, backends: [{service: a, weight: 1}], "
            "matches: [{kind: HTTPRouteGroup, name: r}]}"
        ),
    )
    assert error.field == "spec.matches" and is_not_implemented_message(error.message)


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("access.smi-spec.io/v1alpha3", "TrafficTarget"),
        ("specs.smi-spec.io/v1alpha4", "HTTPRouteGroup"),
    ],
)
def test_the_other_smi_kinds_are_not_implemented_yet(api_version: str, kind: str) -> None:
    _, (error,) = parse_file(
        "t.yaml",
        f"apiVersion: {api_version}\nkind: {kind}\n"
        "metadata: {name: t, namespace: d}\nspec: {}\n",
    )
    assert is_not_implemented_message(error.message), error
