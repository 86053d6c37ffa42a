"""Weighted destinations without endpoints get weight 0 until their first endpoint exists."""

from __future__ import annotations

from envoy.config.route.v3 import route_pb2

from shoal.generate import CLUSTER, ENDPOINT, LISTENER, ROUTE, ConfigGenerator, emptydest
from shoal.generate.prepared import unpack

from .meshcfg import RATINGS, REVIEWS, moved_on, sidecar

V1 = "outbound|80|v1|reviews.default.svc.cluster.local"
V2 = "outbound|80|v2|reviews.default.svc.cluster.local"
V2_ENDPOINT = (
    "  - {address: 10.0.0.2, ports: {http: 8002, http-alt: 9002}, labels: {version: v2}}\n"
)
NO_V2 = REVIEWS.replace(V2_ENDPOINT, "")
NO_ENDPOINTS = NO_V2.replace(
    "  - {address: 10.0.0.1, ports: {http: 8001, http-alt: 9001}, labels: {version: v1}}\n", ""
).replace("  endpoints:\n", "  workloadSelector: {labels: {app: reviews}}\n")
SKIP_OFF = """
apiVersion: shoal.dev/v1alpha1
kind: MeshConfig
metadata: {name: mesh, namespace: istio-system}
spec: {skipEmptyDestinations: false}
"""


def gen(*texts: str, previous: ConfigGenerator | None = None) -> ConfigGenerator:
    out = moved_on(*texts, previous=previous)
    out.view(sidecar())
    return out


def split(g: ConfigGenerator) -> dict[str, int]:
    """The weights of the reviews canary route (the weighted one) as the sidecar gets them."""
    table = g.view(sidecar()).of(ROUTE)["outbound_http"]
    config = unpack(table, route_pb2.RouteConfiguration())
    assert isinstance(config, route_pb2.RouteConfiguration)
    vhost = next(v for v in config.virtual_hosts if v.name == V1.split("|")[3] + ":80")
    weighted = [r for r in vhost.routes if r.route.weighted_clusters.clusters]
    assert len(weighted) == 1
    return {c.name: c.weight.value for c in weighted[0].route.weighted_clusters.clusters}


def test_an_empty_subset_gets_weight_zero_and_the_route_relies_on_the_other() -> None:
    g = gen(NO_V2, RATINGS)
    assert split(g) == {V1: 80, V2: 0}
    table = g.view(sidecar()).of(ROUTE)["outbound_http"]
    assert table.needs_endpoints == {V1}
    assert V2 in table.refs  # still named: the cluster stays, only its share moved


def test_with_endpoints_everywhere_the_weights_are_as_written() -> None:
    g = gen(REVIEWS, RATINGS)
    assert split(g) == {V1: 80, V2: 20}
    assert not g.view(sidecar()).of(ROUTE)["outbound_http"].needs_endpoints


def test_when_every_destination_is_empty_istios_503_stays() -> None:
    g = gen(NO_ENDPOINTS, RATINGS)
    assert split(g) == {V1: 80, V2: 20}
    assert not g.view(sidecar()).of(ROUTE)["outbound_http"].needs_endpoints


def test_mesh_config_turns_it_off() -> None:
    assert split(gen(NO_V2, RATINGS, SKIP_OFF)) == {V1: 80, V2: 20}


def test_first_endpoint_changes_routes_and_not_listeners() -> None:
    first = gen(NO_V2, RATINGS)
    second = gen(REVIEWS, RATINGS, previous=first)
    assert not second.kept.routing
    assert split(second) == {V1: 80, V2: 20}
    one, two = first.view(sidecar()), second.view(sidecar())
    assert two.of(LISTENER) is one.of(LISTENER)
    assert two.of(ROUTE)["outbound_http"].version != one.of(ROUTE)["outbound_http"].version


def test_last_endpoint_gone_changes_routes_back() -> None:
    first = gen(REVIEWS, RATINGS)
    second = gen(NO_V2, RATINGS, previous=first)
    assert split(second) == {V1: 80, V2: 0}


def test_endpoint_changes_that_keep_emptiness_stay_eds_only() -> None:
    """Moving v1's endpoint, adding a second v1 one, or changing the empty-free subset's
    endpoints leaves clusters, routes and listeners the very same objects."""
    first = gen(NO_V2, RATINGS)
    moved = NO_V2.replace("10.0.0.1", "10.0.0.9")
    second = gen(moved, RATINGS, previous=first)
    extra = moved.replace(
        "  endpoints:\n",
        "  endpoints:\n  - {address: 10.0.0.7, ports: {http: 8007}, labels: {version: v1}}\n",
    )
    third = gen(extra, RATINGS, previous=second)
    for before, after in ((first, second), (second, third)):
        assert after.kept.routing
        one, two = before.view(sidecar()), after.view(sidecar())
        for type_url in (CLUSTER, ROUTE, LISTENER):
            assert two.of(type_url) is one.of(type_url)
        assert two.of(ENDPOINT)[V1].version != one.of(ENDPOINT)[V1].version


def test_after_a_registry_only_push_the_set_is_what_a_fresh_walk_gives() -> None:
    """The generator checks only the changed hosts after an endpoint-only change; the set
    must equal a walk of every route of the same snapshot, through empty and back."""
    g = gen(REVIEWS, RATINGS)
    for texts in ((NO_V2, RATINGS), (NO_ENDPOINTS, RATINGS), (NO_V2, RATINGS), (REVIEWS, RATINGS)):
        g = gen(*texts, previous=g)
        assert g.empty_destinations == emptydest.empty_destinations(g.snapshot)
    assert g.empty_destinations == frozenset()
