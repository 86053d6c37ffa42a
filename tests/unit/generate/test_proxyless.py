"""What a proxyless gRPC client is sent (generate/proxyless*.py), checked resource by resource.

The behaviour itself (a real grpcio client honouring it) is tests/e2e/test_proxyless_grpc.py;
here: the shapes gRPC's xDS client needs, and that sidecars get exactly what they got before.
"""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

from shoal.engine import Pipeline
from shoal.generate import CLUSTER, ENDPOINT, LISTENER, ROUTE, ConfigGenerator
from shoal.generate.prepared import unpack
from shoal.generate.proxyless_clusters import assignment
from shoal.model import Endpoint, Port, Proxy, parse_proxy

from .meshcfg import RATINGS

HOST = "echo.default.svc.cluster.local"
ECHO = f"""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: echo, namespace: default}}
spec:
  hosts: [{HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9000, name: grpc, protocol: GRPC}}, {{number: 9100, name: tcp, protocol: TCP}}]
  endpoints:
  - {{address: 10.0.0.1, ports: {{grpc: 7001}}, labels: {{version: v1}}}}
  - {{address: 10.0.0.2, ports: {{grpc: 7002}}, labels: {{version: v2}}, weight: 3}}
  - {{address: 10.0.0.3, ports: {{grpc: 7003}}, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: echo, namespace: default}}
spec:
  host: {HOST}
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - name: v2
    labels: {{version: v2}}
    trafficPolicy: {{loadBalancer: {{consistentHash: {{httpHeaderName: x-key}}}}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: echo, namespace: default}}
spec:
  hosts: [{HOST}]
  http:
  - match: [{{headers: {{x-user: {{exact: jason}}}}}}]
    fault: {{abort: {{grpcStatus: UNAVAILABLE, percentage: {{value: 50}}}}}}
    headers: {{request: {{set: {{x-a: b}}}}}}
    route: [{{destination: {{host: {HOST}, port: {{number: 9000}}, subset: v2}}}}]
  - timeout: 1.5s
    retries: {{attempts: 7, retryOn: "5xx,unavailable,connect-failure,resource-exhausted"}}
    mirror: {{host: {HOST}, port: {{number: 9000}}, subset: v1}}
    route:
    - {{destination: {{host: {HOST}, port: {{number: 9000}}, subset: v1}}, weight: 70}}
    - {{destination: {{host: {HOST}, port: {{number: 9000}}, subset: v2}}, weight: 30}}
"""
DNS = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: default}
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 443, name: https, protocol: HTTP}]
"""
AUTHZ = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: default}
spec: {}
"""
NODE = "sidecar~10.1.0.1~client.default~default.svc.cluster.local"


def generation(*docs: str) -> ConfigGenerator:
    pipeline = Pipeline()
    build = pipeline.load({f"f{i}.yaml": d for i, d in enumerate(docs)})
    assert not pipeline.errors, pipeline.errors
    return build.generation


def client(namespace: str = "default") -> Proxy:
    node = f"sidecar~10.1.0.1~client.{namespace}~{namespace}.svc.cluster.local"
    return parse_proxy(node, {"GENERATOR": "grpc", "NAMESPACE": namespace})


def listener(gen: ConfigGenerator, name: str) -> hcm_pb2.HttpConnectionManager:
    out = unpack(gen.view(client()).of(LISTENER)[name], listener_pb2.Listener())
    assert isinstance(out, listener_pb2.Listener)
    hcm = hcm_pb2.HttpConnectionManager()
    assert out.api_listener.api_listener.Unpack(hcm)
    return hcm


def route_table(gen: ConfigGenerator) -> route_pb2.RouteConfiguration:
    out = unpack(gen.view(client()).of(ROUTE)[f"{HOST}:9000"], route_pb2.RouteConfiguration())
    assert isinstance(out, route_pb2.RouteConfiguration)
    return out


def test_generator_grpc_marks_a_proxyless_client_without_sidecar_ports() -> None:
    proxy = parse_proxy(NODE, {"GENERATOR": "grpc", "INTERCEPTION_MODE": "NONE"})
    assert proxy.proxyless and proxy.namespace == "default"
    assert not parse_proxy(NODE, {}).proxyless


def test_api_listeners_are_named_by_every_dial_target_of_http_ports() -> None:
    gen = generation(ECHO, RATINGS)
    names = set(gen.view(client()).of(LISTENER))
    short = ["echo", "echo.default", "echo.default.svc", HOST]
    ratings = ["ratings.shop", "ratings.shop.svc", "ratings.shop.svc.cluster.local"]
    # the TCP port has none; the default (first HTTP) port is reachable without a port too;
    # another namespace's service only by qualified names
    expected = {f"{n}:9000" for n in short} | set(short)
    expected |= {f"{n}:80" for n in ratings} | set(ratings)
    assert names == expected
    # ratings' short name belongs to the shop namespace's clients
    shop_names = set(gen.view(client("shop")).of(LISTENER))
    assert "ratings:80" in shop_names and "echo:9000" not in shop_names


def test_api_listener_hcm_takes_rds_and_ends_with_the_router() -> None:
    hcm = listener(generation(ECHO), "echo:9000")
    assert hcm.rds.route_config_name == f"{HOST}:9000"
    assert hcm.rds.config_source.HasField("ads")
    assert [f.name for f in hcm.http_filters] == [
        "envoy.filters.http.fault",
        "envoy.filters.http.router",
    ]
    assert not any(f.disabled for f in hcm.http_filters)


def test_routes_carry_what_grpc_reads_and_nothing_it_ignores() -> None:
    table = route_table(generation(ECHO))
    (vh,) = table.virtual_hosts
    assert "echo:9000" in vh.domains and HOST in vh.domains
    jason, split = vh.routes
    assert [h.name for h in jason.match.headers] == ["x-user"]
    assert not jason.request_headers_to_add
    fault = fault_pb2.HTTPFault()
    assert jason.typed_per_filter_config["envoy.filters.http.fault"].Unpack(fault)
    assert fault.abort.grpc_status == 14 and fault.abort.percentage.numerator == 500000
    # timeout -> max_stream_duration (gRFC A31); RouteAction.timeout is not read by gRPC
    action = split.route
    assert action.max_stream_duration.max_stream_duration.ToMilliseconds() == 1500
    assert action.max_stream_duration.grpc_timeout_header_max.ToMilliseconds() == 1500
    assert not action.HasField("timeout") and not action.HasField("max_grpc_timeout")
    # retries: gRPC status names only, at most 4 (5 attempts), no Envoy-only parts (A44)
    retry = action.retry_policy
    assert retry.retry_on == "unavailable,resource-exhausted"
    assert retry.num_retries.value == 4
    assert not retry.retry_host_predicate and not retry.retriable_status_codes
    assert not action.request_mirror_policies
    weights = {c.name: c.weight.value for c in action.weighted_clusters.clusters}
    assert weights == {f"outbound|9000|v1|{HOST}": 70, f"outbound|9000|v2|{HOST}": 30}


def test_a_retry_policy_without_grpc_conditions_is_left_out() -> None:
    doc = ECHO.replace(
        'retryOn: "5xx,unavailable,connect-failure,resource-exhausted"', "retryOn: 5xx"
    )
    split = route_table(generation(doc)).virtual_hosts[0].routes[1]
    assert not split.route.HasField("retry_policy")
    # the default (Istio's 2 retries) keeps its gRPC part: unavailable, cancelled
    default = ECHO.replace("    retries: {attempts: 7", "    x-retries: {attempts: 7")
    default = "\n".join(line for line in default.splitlines() if "x-retries" not in line)
    split = route_table(generation(default)).virtual_hosts[0].routes[1]
    assert split.route.retry_policy.retry_on == "unavailable,cancelled"
    assert split.route.retry_policy.num_retries.value == 2


def test_clusters_are_eds_with_grpc_lb_policies_and_weighted_localities() -> None:
    gen = generation(ECHO, DNS)
    view = gen.view(client())
    # the DNS ServiceEntry has no gRPC cluster kind; the TCP port is no gRPC target
    assert set(view.of(CLUSTER)) == {f"outbound|9000|{s}|{HOST}" for s in ("", "v1", "v2")}
    whole = unpack(view.of(CLUSTER)[f"outbound|9000||{HOST}"], cluster_pb2.Cluster())
    v2 = unpack(view.of(CLUSTER)[f"outbound|9000|v2|{HOST}"], cluster_pb2.Cluster())
    assert isinstance(whole, cluster_pb2.Cluster) and isinstance(v2, cluster_pb2.Cluster)
    # Istio's default LEAST_REQUEST is refused by grpcio ("LB policy is not supported")
    assert whole.lb_policy == cluster_pb2.Cluster.ROUND_ROBIN
    assert v2.lb_policy == cluster_pb2.Cluster.RING_HASH
    assert whole.type == cluster_pb2.Cluster.EDS and whole.eds_cluster_config.eds_config.HasField(
        "ads"
    )
    assert not whole.HasField("transport_socket") and not whole.HasField("outlier_detection")
    cla = unpack(
        view.of(ENDPOINT)[f"outbound|9000|v2|{HOST}"], endpoint_pb2.ClusterLoadAssignment()
    )
    assert isinstance(cla, endpoint_pb2.ClusterLoadAssignment)
    ports = [e.endpoint.address.socket_address.port_value for e in cla.endpoints[0].lb_endpoints]
    assert ports == [7002, 7003]
    # gRPC drops a locality without a weight (gRFC A27): it carries its endpoints' sum
    assert cla.endpoints[0].load_balancing_weight.value == 4


def test_each_locality_is_weighted_by_its_endpoints() -> None:
    port = Port(number=9000, name="grpc", protocol="GRPC")
    eps = [
        Endpoint(address="10.0.0.1", ports={"grpc": 1}, weight=2, locality="eu/a"),
        Endpoint(address="10.0.0.2", ports={"grpc": 2}, weight=3, locality="eu/a"),
        Endpoint(address="10.0.0.3", ports={"grpc": 3}, locality="us/b/c"),
    ]
    cla = unpack(assignment("c", eps, port), endpoint_pb2.ClusterLoadAssignment())
    assert isinstance(cla, endpoint_pb2.ClusterLoadAssignment)
    groups = {
        (g.locality.region, g.locality.zone, g.locality.sub_zone): (
            g.load_balancing_weight.value,
            [e.endpoint.address.socket_address.port_value for e in g.lb_endpoints],
        )
        for g in cla.endpoints
    }
    assert groups == {("eu", "a", ""): (5, [1, 2]), ("us", "b", "c"): (1, [3])}


def test_sidecars_get_the_same_bytes_whether_or_not_a_proxyless_client_asked() -> None:
    sidecar = parse_proxy(NODE, {"INTERCEPTION_MODE": "NONE", "OUTBOUND_PORT": "15001"})
    before = generation(ECHO, RATINGS).view(sidecar)
    gen = generation(ECHO, RATINGS)
    gen.view(client())
    after = gen.view(sidecar)
    for type_url in (CLUSTER, ENDPOINT, LISTENER, ROUTE):
        assert {n: r.any_bytes for n, r in before.of(type_url).items()} == {
            n: r.any_bytes for n, r in after.of(type_url).items()
        }
    assert not any(n.endswith(":9000") for n in after.of(LISTENER))


def test_a_change_a_client_cannot_see_keeps_its_maps() -> None:
    pipeline = Pipeline()
    pipeline.load({"echo.yaml": ECHO, "ratings.yaml": RATINGS})
    assert pipeline.generation is not None
    first = pipeline.generation.view(client())
    # only the VirtualService's route changes: listeners, clusters, endpoints stay the objects
    build = pipeline.load(
        {"echo.yaml": ECHO.replace("timeout: 1.5s", "timeout: 2s"), "ratings.yaml": RATINGS}
    )
    second = build.generation.view(client())
    second_generation = build.generation
    assert second is not first
    for type_url in (CLUSTER, ENDPOINT, LISTENER):
        assert second.of(type_url) is first.of(type_url)
    assert second.of(ROUTE) is not first.of(ROUTE)
    # a policy only sidecars' inbound side reads: the very same view, no stream wakes up
    build = pipeline.load(
        {
            "echo.yaml": ECHO.replace("timeout: 1.5s", "timeout: 2s"),
            "ratings.yaml": RATINGS,
            "authz.yaml": AUTHZ,
        }
    )
    assert build.generation is not second_generation
    assert build.generation.view(client()) is second


MTLS_DR = f"""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: echo, namespace: default}}
spec:
  host: {HOST}
  trafficPolicy: {{tls: {{mode: ISTIO_MUTUAL}}}}
"""
ECHO_SE = ECHO.split("---", maxsplit=1)[0].replace(
    "labels: {version: v1}", "labels: {version: v1}, serviceAccount: echo"
)


def test_istio_mutual_clusters_name_the_certificate_provider_and_spiffe_sans() -> None:
    gen = generation(ECHO_SE, MTLS_DR)
    secure = parse_proxy(NODE, {"GENERATOR": "grpc", "SECURE": "true"})
    found = gen.view(secure).of(CLUSTER)[f"outbound|9000||{HOST}"]
    cluster = unpack(found, cluster_pb2.Cluster())
    assert isinstance(cluster, cluster_pb2.Cluster)
    ctx = tls_pb2.UpstreamTlsContext()
    assert cluster.transport_socket.typed_config.Unpack(ctx)
    common = ctx.common_tls_context
    assert common.tls_certificate_provider_instance.instance_name == "default"
    validation = common.combined_validation_context.default_validation_context
    assert validation.ca_certificate_provider_instance.certificate_name == "ROOTCA"
    assert [m.exact for m in validation.match_subject_alt_names] == [
        "spiffe://cluster.local/ns/default/sa/echo"
    ]
    # a client without a certificate gets no cluster rather than a plaintext one
    assert f"outbound|9000||{HOST}" not in gen.view(client()).of(CLUSTER)


def test_an_endpoint_change_rebuilds_only_the_assignments() -> None:
    pipeline = Pipeline()
    pipeline.load({"echo.yaml": ECHO, "ratings.yaml": RATINGS})
    assert pipeline.generation is not None
    first = pipeline.generation.view(client())
    moved = ECHO.replace("grpc: 7003", "grpc: 7004")
    second = pipeline.load({"echo.yaml": moved, "ratings.yaml": RATINGS}).generation.view(client())
    for type_url in (CLUSTER, LISTENER, ROUTE):
        assert second.of(type_url) is first.of(type_url)
    eds = second.of(ENDPOINT)
    assert eds is not first.of(ENDPOINT)
    # ratings' assignment is the previous object; echo's v2 carries the new port
    name = "outbound|80||ratings.shop.svc.cluster.local"
    assert eds[name] is first.of(ENDPOINT)[name]
    cla = unpack(eds[f"outbound|9000|v2|{HOST}"], endpoint_pb2.ClusterLoadAssignment())
    assert isinstance(cla, endpoint_pb2.ClusterLoadAssignment)
    ports = [e.endpoint.address.socket_address.port_value for e in cla.endpoints[0].lb_endpoints]
    assert ports == [7002, 7004]
