"""REDIRECT sidecars (traffic captured by iptables) get Istio's virtualOutbound/virtualInbound
shape (generate/capture_listeners.py); loopback sidecars keep theirs. Envoy validates both."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from shoal.generate import CLUSTER, LISTENER, ROUTE
from shoal.generate.prepared import unpack
from shoal.model import Proxy, parse_proxy

from .meshcfg import generator, sidecar

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "property"))
import envoyboot

MESH = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  addresses: [10.96.0.2]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints: [{address: 10.88.0.2}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: default}
spec:
  hosts: [db.default.svc.cluster.local]
  addresses: [10.96.0.3]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 3306, name: tcp, protocol: TCP}]
  endpoints:
  - {address: 10.88.0.3, labels: {version: v1}}
  - {address: 10.88.0.4, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: db, namespace: default}
spec:
  host: db
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: default}
spec:
  hosts: [db]
  tcp:
  - route:
    - {destination: {host: db, subset: v1}, weight: 70}
    - {destination: {host: db, subset: v2}, weight: 30}
"""

REGISTRY_ONLY = """
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
"""


def captured(secure: bool = False) -> Proxy:
    meta: dict[str, object] = {
        "NAMESPACE": "default",
        "INTERCEPTION_MODE": "REDIRECT",
        "INSTANCE_IPS": "10.88.0.2",
        "LABELS": {"app": "reviews"},
        "SERVICE_HOST": "reviews.default.svc.cluster.local",
        "WORKLOAD_NAME": "reviews",
    }
    if secure:
        meta["SECURE"] = "true"
    return parse_proxy("sidecar~10.88.0.2~reviews-0.default~default.svc.cluster.local", meta)


def _listeners(gen: object, proxy: Proxy) -> dict[str, listener_pb2.Listener]:
    view = gen.view(proxy)  # type: ignore[attr-defined]
    out = {}
    for name, res in view.of(LISTENER).items():
        msg = listener_pb2.Listener()
        unpack(res, msg)
        out[name] = msg
    return out


def _tcp(chain: object) -> tcp_proxy_pb2.TcpProxy:
    proxy = tcp_proxy_pb2.TcpProxy()
    assert chain.filters[0].typed_config.Unpack(proxy)  # type: ignore[attr-defined]
    return proxy


def test_redirect_sidecar_gets_virtual_outbound_and_inbound() -> None:
    gen = generator(MESH)
    listeners = _listeners(gen, captured())
    assert set(listeners) == {"virtualOutbound", "virtualInbound", "0.0.0.0_9080", "10.96.0.3_3306"}
    out = listeners["virtualOutbound"]
    assert out.use_original_dst.value and out.address.socket_address.port_value == 15001
    assert _tcp(out.filter_chains[-1]).cluster == "PassthroughCluster"  # ALLOW_ANY
    assert out.filter_chains[0].filter_chain_match.destination_port.value == 15001
    assert _tcp(out.filter_chains[0]).cluster == "BlackHoleCluster"
    for name in ("0.0.0.0_9080", "10.96.0.3_3306"):
        assert listeners[name].bind_to_port.value is False
    weights = {
        c.name: c.weight
        for c in _tcp(listeners["10.96.0.3_3306"].filter_chains[0]).weighted_clusters.clusters
    }
    assert weights == {"outbound|3306|v1|db.default.svc.cluster.local": 70,
                       "outbound|3306|v2|db.default.svc.cluster.local": 30}  # fmt: skip
    inbound = listeners["virtualInbound"]
    assert [f.name for f in inbound.listener_filters] == ["envoy.filters.listener.original_dst"]
    ports = [c.filter_chain_match.destination_port.value for c in inbound.filter_chains]
    assert ports == [9080, 15006, 0]  # the served port, the loop guard, passthrough
    clusters = {}
    for name, res in gen.view(captured()).of(CLUSTER).items():
        msg = cluster_pb2.Cluster()
        unpack(res, msg)
        clusters[name] = msg
    app = clusters["inbound|9080||"]
    assert app.type == cluster_pb2.Cluster.ORIGINAL_DST
    assert app.upstream_bind_config.source_address.address == "127.0.0.6"
    assert clusters["PassthroughCluster"].type == cluster_pb2.Cluster.ORIGINAL_DST
    # the HTTP catch-all goes where the app was going, not through the forward proxy
    table = route_pb2.RouteConfiguration()
    unpack(gen.view(captured()).of(ROUTE)["outbound_http"], table)
    catch_all = next(v for v in table.virtual_hosts if v.domains == ["*"])
    assert catch_all.routes[0].route.cluster == "PassthroughCluster"
    vhost = next(v for v in table.virtual_hosts if "reviews:9080" in v.domains)
    assert "10.96.0.2:9080" in vhost.domains  # by VIP too


def test_registry_only_blackholes_unknown_destinations() -> None:
    listeners = _listeners(generator(MESH, REGISTRY_ONLY), captured())
    assert _tcp(listeners["virtualOutbound"].filter_chains[-1]).cluster == "BlackHoleCluster"


def test_loopback_sidecars_keep_their_shape() -> None:
    gen = generator(MESH)
    assert set(_listeners(gen, sidecar())) == {"outbound_http"}
    table = route_pb2.RouteConfiguration()
    unpack(gen.view(sidecar()).of(ROUTE)["outbound_http"], table)
    catch_all = next(v for v in table.virtual_hosts if v.domains == ["*"])
    assert catch_all.routes[0].route.cluster == "dynamic_forward_proxy_cluster"


@pytest.mark.envoy
@pytest.mark.parametrize("secure", [False, True])
def test_envoy_accepts_the_captured_shape(secure: bool, tmp_path: Path) -> None:
    strict = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec: {mtls: {mode: STRICT}}
"""
    gen = generator(MESH, strict) if secure else generator(MESH)
    ok, output = envoyboot.validate(envoyboot.bootstrap(gen, captured(secure)), tmp_path)
    assert ok, output
