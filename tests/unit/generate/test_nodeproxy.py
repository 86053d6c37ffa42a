"""A node proxy's view: each local pod's sidecar config, renamed, in its netns, its own cert."""

from __future__ import annotations

import json

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

from shoal.generate import CLUSTER, ENDPOINT, LISTENER, ROUTE
from shoal.generate.nodeproxy import identity_secret
from shoal.generate.prepared import unpack
from shoal.model import ProxyError, parse_proxy

from .meshcfg import REVIEWS, generator, sidecar

POLICY = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-only-frontend, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  rules: [{from: [{source: {principals: [cluster.local/ns/default/sa/frontend]}}]}]
"""


def _pod(name: str, sa: str, ip: str, app: str, **ports: int) -> dict[str, object]:
    return {
        "name": name,
        "namespace": "default",
        "ip": ip,
        "netns": f"/var/run/netns/{name}",
        "service_account": sa,
        "labels": {"app": app},
        "outbound_port": 15001,
        **ports,
    }


PODS = [
    _pod("frontend-0", "frontend", "10.0.0.5", "frontend"),
    _pod("reviews-0", "reviews", "10.0.0.1", "reviews", inbound_port=15006, app_port=8001),
]


def _node(pods: object = PODS, secure: bool = True) -> object:
    meta: dict[str, object] = {
        "NAMESPACE": "shoal-system",
        "SERVICE_ACCOUNT": "node-n1",
        "NODE_PODS": json.dumps(pods),
    }
    if secure:
        meta["SECURE"] = "true"
    return parse_proxy("node~10.0.0.254~n1.shoal-system~shoal-system.svc.cluster.local", meta)


def _certificates(cluster: cluster_pb2.Cluster) -> list[str]:
    """The SDS names of the client certificates a cluster's mTLS presents."""
    names = []
    for match in cluster.transport_socket_matches:
        if match.transport_socket.typed_config.type_url.endswith("UpstreamTlsContext"):
            ctx = tls_pb2.UpstreamTlsContext()
            match.transport_socket.typed_config.Unpack(ctx)
            names += [c.name for c in ctx.common_tls_context.tls_certificate_sds_secret_configs]
    return names


def test_node_pods_parse_and_bad_metadata_is_named() -> None:
    node = _node()
    assert [p.key for p in node.node_pods] == ["frontend-0.default", "reviews-0.default"]
    reviews = node.node_pods[1].proxy
    assert (reviews.service_account, reviews.inbound_port, reviews.app_port) == (
        "reviews",
        15006,
        8001,
    )
    assert reviews.secure and reviews.labels == {"app": "reviews"}
    with pytest.raises(ProxyError, match=r"NODE_PODS\[0\]: field 'netns' is required"):
        _node([{k: v for k, v in PODS[0].items() if k != "netns"}])
    with pytest.raises(ProxyError, match="must be an absolute path"):
        _node([{**PODS[0], "netns": "pod"}])
    with pytest.raises(ProxyError, match="twice"):
        _node([PODS[0], PODS[0]])


def test_each_pod_gets_its_sidecar_config_in_its_netns_with_its_identity() -> None:
    gen = generator(REVIEWS, POLICY)
    node = gen.view(_node()).resources  # type: ignore[arg-type]
    alone = {pod.key: gen.view(pod.proxy).resources for pod in _node().node_pods}  # type: ignore[attr-defined]

    for key, maps in alone.items():
        netns = f"/var/run/netns/{key.split('.')[0]}"
        for name in maps[LISTENER]:
            listener = unpack(node[LISTENER][f"{key}~{name}"], listener_pb2.Listener())
            assert isinstance(listener, listener_pb2.Listener)
            assert listener.address.socket_address.network_namespace_filepath == netns
        for name in maps[ROUTE]:
            assert f"{key}~{name}" in node[ROUTE]
        for name in maps[CLUSTER]:
            cluster = unpack(node[CLUSTER][f"{key}~{name}"], cluster_pb2.Cluster())
            assert isinstance(cluster, cluster_pb2.Cluster)
            if cluster.HasField("eds_cluster_config"):
                # its endpoints are renamed with it (the stream's warming keys on the name)
                assert cluster.eds_cluster_config.service_name == cluster.name
                assert cluster.name in node[ENDPOINT]
    assert set(node[ENDPOINT]) == {
        f"{key}~{name}" for key, maps in alone.items() for name in maps[ENDPOINT]
    }
    total = sum(len(m[CLUSTER]) for m in alone.values())
    assert len(node[CLUSTER]) == total

    # frontend's outbound cluster to reviews presents frontend's certificate, never reviews'
    out = unpack(
        node[CLUSTER]["frontend-0.default~outbound|80||reviews.default.svc.cluster.local"],
        cluster_pb2.Cluster(),
    )
    assert isinstance(out, cluster_pb2.Cluster)
    assert _certificates(out) == [identity_secret("default", "frontend")]

    # frontend's route table sends to frontend's clusters only
    table = next(n for n in node[ROUTE] if n.startswith("frontend-0.default~"))
    assert all(r.startswith("frontend-0.default~") for r in node[ROUTE][table].refs)
    routes = unpack(node[ROUTE][table], route_pb2.RouteConfiguration())
    assert b"reviews-0.default~" not in routes.SerializeToString()

    # reviews' inbound listener enforces the AuthorizationPolicy (the sidecar's filter, in
    # reviews' netns) with reviews' certificate; its app cluster connects from its netns
    inbound = [n for n in node[LISTENER] if n.startswith("reviews-0.default~")]
    raw_in = b"".join(node[LISTENER][n].any_bytes for n in inbound)
    assert b"cluster.local/ns/default/sa/frontend" in raw_in
    assert identity_secret("default", "reviews").encode() in raw_in
    app = unpack(node[CLUSTER]["reviews-0.default~inbound|8001||"], cluster_pb2.Cluster())
    assert isinstance(app, cluster_pb2.Cluster)
    source = app.upstream_bind_config.source_address
    assert (source.address, source.network_namespace_filepath) == (
        "127.0.0.1",
        "/var/run/netns/reviews-0",
    )


def test_sidecar_output_is_unchanged_beside_a_node_proxy() -> None:
    before = generator(REVIEWS, POLICY).view(sidecar(name="reviews", SECURE="true"))
    gen = generator(REVIEWS, POLICY)
    gen.view(_node())  # type: ignore[arg-type]
    after = gen.view(sidecar(name="reviews", SECURE="true"))
    for type_url in (CLUSTER, ENDPOINT, LISTENER, ROUTE):
        assert {n: r.any_bytes for n, r in before.of(type_url).items()} == {
            n: r.any_bytes for n, r in after.of(type_url).items()
        }
