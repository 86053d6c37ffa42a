"""Generation from snapshots to Envoy resources: pure, deterministic, shared across proxies."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.route.v3 import route_pb2

from shoal.generate import ConfigGenerator
from shoal.generate.prepared import unpack

from .meshcfg import RATINGS, REVIEWS, generator, sidecar, snapshot


def route_config(gen: ConfigGenerator, namespace: str = "default") -> route_pb2.RouteConfiguration:
    res = gen.routes(sidecar(namespace))["outbound_http"]
    out = unpack(res, route_pb2.RouteConfiguration())
    assert isinstance(out, route_pb2.RouteConfiguration)
    return out


def test_clusters_use_istio_names_per_port_and_subset() -> None:
    names = set(generator(REVIEWS).clusters())
    host = "reviews.default.svc.cluster.local"
    assert names == {f"outbound|{p}|{s}|{host}" for p in (80, 9080) for s in ("", "v1", "v2")}


def test_subset_load_balancer_overrides_the_service_one() -> None:
    gen = generator(REVIEWS)
    v1 = unpack(
        gen.clusters()["outbound|80|v1|reviews.default.svc.cluster.local"], cluster_pb2.Cluster()
    )
    v2 = unpack(
        gen.clusters()["outbound|80|v2|reviews.default.svc.cluster.local"], cluster_pb2.Cluster()
    )
    assert isinstance(v1, cluster_pb2.Cluster) and isinstance(v2, cluster_pb2.Cluster)
    assert v1.lb_policy == cluster_pb2.Cluster.ROUND_ROBIN
    assert v2.lb_policy == cluster_pb2.Cluster.RANDOM
    assert v1.type == cluster_pb2.Cluster.EDS and v1.eds_cluster_config.service_name == v1.name


def test_subset_endpoints_are_filtered_by_labels_and_use_named_ports() -> None:
    gen = generator(REVIEWS)
    cla = unpack(
        gen.endpoints()["outbound|9080|v2|reviews.default.svc.cluster.local"],
        endpoint_pb2.ClusterLoadAssignment(),
    )
    assert isinstance(cla, endpoint_pb2.ClusterLoadAssignment)
    addrs = [
        (e.endpoint.address.socket_address.address, e.endpoint.address.socket_address.port_value)
        for group in cla.endpoints
        for e in group.lb_endpoints
    ]
    assert addrs == [("10.0.0.2", 9002)]


def test_routes_match_headers_and_prefix_then_split_by_weight() -> None:
    rc = route_config(generator(REVIEWS))
    vh = next(v for v in rc.virtual_hosts if v.name == "reviews.default.svc.cluster.local:80")
    first, second = vh.routes
    assert first.match.prefix == "/api"
    assert first.match.headers[0].name == "end-user"
    assert first.match.headers[0].string_match.exact == "jason"
    assert first.route.cluster == "outbound|80|v2|reviews.default.svc.cluster.local"
    weights = {
        c.name.split("|")[2]: c.weight.value for c in second.route.weighted_clusters.clusters
    }
    assert weights == {"v1": 80, "v2": 20}


def test_domains_cover_short_names_ports_and_addresses_from_the_same_namespace() -> None:
    rc = route_config(generator(REVIEWS, RATINGS))
    domains = {v.name: set(v.domains) for v in rc.virtual_hosts}
    http = domains["reviews.default.svc.cluster.local:80"]
    assert {"reviews", "reviews:80", "reviews.default", "240.0.0.10", "240.0.0.10:80"} <= http
    assert "reviews" not in domains["reviews.default.svc.cluster.local:9080"]
    assert "reviews:9080" in domains["reviews.default.svc.cluster.local:9080"]
    # ratings lives in another namespace: only qualified names reach it from default
    assert "ratings" not in domains["ratings.shop.svc.cluster.local:80"]
    assert "ratings.shop" in domains["ratings.shop.svc.cluster.local:80"]
    every = [d for v in rc.virtual_hosts for d in v.domains]
    assert len(every) == len(set(every)), "Envoy rejects duplicate domains"


def test_output_is_deterministic_bytes() -> None:
    a, b = generator(REVIEWS, RATINGS), generator(RATINGS, REVIEWS)
    assert {n: r.any_bytes for n, r in a.clusters().items()} == {
        n: r.any_bytes for n, r in b.clusters().items()
    }
    assert a.routes(sidecar()) == b.routes(sidecar())


def test_proxies_in_one_namespace_share_one_generated_view() -> None:
    gen = generator(REVIEWS)
    # two replicas of one workload (same WORKLOAD_NAME and labels) share everything
    one = gen.view(sidecar(name="a", WORKLOAD_NAME="client", LABELS={"app": "client"}))
    two = gen.view(sidecar(name="b", WORKLOAD_NAME="client", LABELS={"app": "client"}))
    assert one is two
    other = gen.view(sidecar(namespace="shop"))
    assert other is not one
    assert other.of("type.googleapis.com/envoy.config.cluster.v3.Cluster") is one.of(
        "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    )


def test_inbound_listener_and_cluster_when_the_app_port_is_known() -> None:
    gen = generator(REVIEWS)
    view = gen.view(sidecar(INBOUND_PORT="15006", APP_PORT="8080"))
    assert "inbound_http" in view.of("type.googleapis.com/envoy.config.listener.v3.Listener")
    assert "inbound|8080||" in view.of("type.googleapis.com/envoy.config.cluster.v3.Cluster")


def test_route_refs_name_exactly_the_clusters_routes_use() -> None:
    res = generator(REVIEWS).routes(sidecar())["outbound_http"]
    host = "reviews.default.svc.cluster.local"
    # the VirtualService binds both ports and names port 80 explicitly, as in Istio
    # plus the catch-all `*` host's dynamic forward proxy (ALLOW_ANY, Istio's default)
    assert res.refs == {
        f"outbound|80|v1|{host}",
        f"outbound|80|v2|{host}",
        "dynamic_forward_proxy_cluster",
    }


def test_snapshot_resolves_two_label_names_only_for_known_namespaces() -> None:
    snap = snapshot(REVIEWS, RATINGS)
    assert snap.resolve("ratings.shop", "default") == "ratings.shop.svc.cluster.local"
    assert snap.resolve("example.com", "default") == "example.com"
