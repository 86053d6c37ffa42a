"""A new snapshot takes over every generated resource whose inputs did not change."""

from __future__ import annotations

from envoy.config.route.v3 import route_pb2

from shoal.generate import CLUSTER, ENDPOINT, LISTENER, ROUTE, ConfigGenerator
from shoal.generate.prepared import unpack

from .meshcfg import RATINGS, REVIEWS, Steps, moved_on, sidecar


def gen(*texts: str, previous: ConfigGenerator | None = None) -> ConfigGenerator:
    out = moved_on(*texts, previous=previous)
    out.view(sidecar())
    return out


def test_endpoint_only_change_keeps_clusters_routes_and_listeners() -> None:
    first = gen(REVIEWS, RATINGS)
    moved = RATINGS.replace("10.0.1.1", "10.0.1.9")
    second = gen(REVIEWS, moved, previous=first)
    assert second.kept.routing
    one, two = first.view(sidecar()), second.view(sidecar())
    for type_url in (CLUSTER, ROUTE):
        assert two.of(type_url) is one.of(type_url)
    assert two.of(ENDPOINT) is not one.of(ENDPOINT)
    # only ratings' assignment was rebuilt; reviews' objects are the very same
    host = "reviews.default.svc.cluster.local"
    name = f"outbound|80|v1|{host}"
    assert two.of(ENDPOINT)[name] is one.of(ENDPOINT)[name]
    changed = "outbound|80||ratings.shop.svc.cluster.local"
    assert two.of(ENDPOINT)[changed].version != one.of(ENDPOINT)[changed].version


def test_route_change_keeps_the_cluster_and_endpoint_maps() -> None:
    first = gen(REVIEWS, RATINGS)
    second = gen(
        REVIEWS.replace("weight: 80", "weight: 70").replace("weight: 20", "weight: 30"),
        RATINGS,
        previous=first,
    )
    assert not second.kept.routing
    one, two = first.view(sidecar()), second.view(sidecar())
    assert two.of(CLUSTER) is one.of(CLUSTER)
    assert two.of(ENDPOINT) is one.of(ENDPOINT)
    assert two.of(ROUTE)["outbound_http"].version != one.of(ROUTE)["outbound_http"].version


def test_nothing_changed_means_the_same_objects_everywhere() -> None:
    first = gen(REVIEWS, RATINGS)
    second = gen(REVIEWS, RATINGS, previous=first)
    one, two = first.view(sidecar()), second.view(sidecar())
    assert all(two.of(t) is one.of(t) for t in (CLUSTER, ENDPOINT, ROUTE))


def test_a_deleted_service_leaves_the_caches() -> None:
    first = gen(REVIEWS, RATINGS)
    second = gen(REVIEWS, previous=first)
    third = gen(REVIEWS, previous=second)
    assert third._cds is not None and third._eds is not None
    hosts = set(third._cds.entries) | set(third._eds.entries)
    assert hosts == {"reviews.default.svc.cluster.local"}
    assert not any("ratings" in name for name in third.view(sidecar()).of(CLUSTER))


def test_secure_clusters_are_taken_over_unless_service_accounts_change() -> None:
    from .meshcfg import sidecar as plain

    def secure(gen: ConfigGenerator) -> object:
        return gen.view(plain(SECURE="true")).of(CLUSTER)

    steps = Steps()
    one = steps(REVIEWS, RATINGS)
    a = secure(one)  # served before the next snapshot arrives, as in the control plane
    two = steps(REVIEWS, RATINGS.replace("10.0.1.1", "10.0.1.9"))
    b = secure(two)
    assert b is a  # an endpoint address moved: SANs unchanged, same map
    three = steps(
        REVIEWS,
        RATINGS.replace("{address: 10.0.1.1}", "{address: 10.0.1.1, serviceAccount: r}"),
    )
    assert secure(three) is not b


def route_table(gen: ConfigGenerator, ns: str = "default") -> route_pb2.RouteConfiguration:
    table = route_pb2.RouteConfiguration()
    unpack(gen.view(sidecar(ns)).of(ROUTE)["outbound_http"], table)
    return table


def test_a_route_table_joined_from_cached_virtual_hosts_is_protobufs_own_bytes() -> None:
    from google.protobuf import any_pb2

    gen = Steps()(REVIEWS, RATINGS)
    resource = gen.view(sidecar()).of(ROUTE)["outbound_http"]
    table = route_table(gen)
    body = any_pb2.Any.FromString(resource.any_bytes).value
    assert table.SerializeToString(deterministic=True) == body
    assert table.HasField("validate_clusters") and not table.validate_clusters.value
    names = [vh.name for vh in table.virtual_hosts]
    assert "reviews.default.svc.cluster.local:80" in names and names[-1] == "allow_any"
    assert "outbound|80|v1|reviews.default.svc.cluster.local" in resource.refs


def test_a_virtual_service_edit_rebuilds_only_its_own_virtual_hosts() -> None:
    first = gen(REVIEWS, RATINGS)
    first.view(sidecar("shop"))
    edited = REVIEWS.replace("weight: 80", "weight: 70").replace("weight: 20", "weight: 30")
    second = gen(edited, RATINGS, previous=first)
    second.view(sidecar("shop"))
    before, after = first._vhosts.entries, second._vhosts.entries
    ratings = [k for k in after if k[1] == "ratings.shop.svc.cluster.local"]
    assert ratings and all(after[k] is before[k] for k in ratings)  # taken over, not rebuilt
    reviews = [k for k in after if k[1] == "reviews.default.svc.cluster.local"]
    assert reviews and all(k not in before for k in reviews)  # the edited VirtualService
    # a namespace that names ratings by the same domains shares its virtual host
    in_default = route_table(second, "default")
    in_other = route_table(second, "other")
    vh_default = [v for v in in_default.virtual_hosts if v.name.startswith("ratings")]
    vh_other = [v for v in in_other.virtual_hosts if v.name.startswith("ratings")]
    assert vh_default == vh_other
    # a DestinationRule or service change is not only a VirtualService change: nothing taken
    third = gen(edited, RATINGS.replace("number: 80", "number: 81"), previous=second)
    third.view(sidecar("shop"))
    assert not any(v is after.get(k) for k, v in third._vhosts.entries.items())


RATE_LIMIT = """
apiVersion: shoal.dev/v1alpha1
kind: LocalRateLimit
metadata: {name: client, namespace: default}
spec:
  workloadSelector: {labels: {app: client}}
  maxTokens: 10
  tokensPerFill: 10
  fillInterval: 1s
"""


def test_sidecar_listeners_are_taken_over_across_route_and_service_edits() -> None:
    first = gen(REVIEWS, RATINGS)
    edited = (
        REVIEWS.replace("weight: 80", "weight: 70")  # a VirtualService
        .replace("weight: 20", "weight: 30")
        .replace("simple: RANDOM", "simple: LEAST_REQUEST")  # a DestinationRule
    )
    renumbered = RATINGS.replace("number: 80", "number: 8080")  # a service's ports
    second = gen(edited, renumbered, previous=first)
    one, two = first.view(sidecar()), second.view(sidecar())
    assert two.of(LISTENER) is one.of(LISTENER)
    # and they are what a fresh build makes of the new config
    fresh = gen(edited, renumbered).view(sidecar())
    assert fresh.of(LISTENER).digest() == two.of(LISTENER).digest()  # type: ignore[attr-defined]


def test_sidecar_listeners_are_rebuilt_when_what_they_hold_changes() -> None:
    serving = sidecar(INBOUND_PORT="15006", APP_PORT="8080")
    first = gen(REVIEWS, RATINGS, RATE_LIMIT)
    more = RATE_LIMIT.replace("maxTokens: 10", "maxTokens: 20")
    second = gen(REVIEWS, RATINGS, more, previous=first)
    one, two = first.view(serving), second.view(serving)
    assert two.of(LISTENER) is not one.of(LISTENER)
    assert two.of(LISTENER).digest() != one.of(LISTENER).digest()  # type: ignore[attr-defined]


def test_a_fault_appearing_and_going_rebuilds_the_outbound_listener() -> None:
    # the outbound listener holds the fault filter only while a route of its table injects
    # faults (httpfilters.py): the route filters are part of the listener's cache key
    faulty = REVIEWS.replace(
        "  - route:\n",
        "  - fault: {abort: {httpStatus: 503, percentage: {value: 5}}}\n    route:\n",
    )
    assert faulty != REVIEWS
    first = gen(REVIEWS, RATINGS)
    second = gen(faulty, RATINGS, previous=first)
    third = gen(REVIEWS, RATINGS, previous=second)
    views = [g.view(sidecar()).of(LISTENER) for g in (first, second, third)]
    assert views[1].digest() != views[0].digest()  # type: ignore[attr-defined]
    assert views[2].digest() == views[0].digest()  # type: ignore[attr-defined]
    for texts, view in (((faulty, RATINGS), views[1]), ((REVIEWS, RATINGS), views[2])):
        assert gen(*texts).view(sidecar()).of(LISTENER).digest() == view.digest()  # type: ignore[attr-defined]
