"""Pure generation tests for the edge patterns: outbound policy, rate limits, gateways, TCP."""

from __future__ import annotations

from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.local_ratelimit.v3 import local_rate_limit_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from shoal.api import ConfigStore
from shoal.generate import ConfigGenerator, ProxyView
from shoal.generate.outbound_policy import DFP_CLUSTER, DFP_FILTER
from shoal.generate.prepared import CLUSTER, LISTENER, ROUTE, unpack
from shoal.model import Credential, build_snapshot, parse_proxy

from .meshcfg import REVIEWS, generator, sidecar, snapshot

REGISTRY_ONLY = """
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec: {outboundTrafficPolicy: {mode: REGISTRY_ONLY}}
"""

GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - {port: {number: 8080, name: http, protocol: HTTP}, hosts: ["*"]}
  - port: {number: 8443, name: https, protocol: HTTPS}
    hosts: [shop.example.com]
    tls: {mode: SIMPLE, credentialName: shop}
  - {port: {number: 9000, name: tcp, protocol: TCP}, hosts: ["*"]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: default}
spec:
  hosts: [shop.example.com]
  gateways: [ingress]
  http:
  - route: [{destination: {host: reviews, subset: v1, port: {number: 80}}}]
  tcp:
  - route:
    - {destination: {host: reviews, subset: v1, port: {number: 80}}, weight: 50}
    - {destination: {host: reviews, subset: v2, port: {number: 80}}, weight: 50}
"""


def _routes(gen_texts: tuple[str, ...], **meta: object) -> route_pb2.RouteConfiguration:
    gen = generator(*gen_texts)
    out = unpack(gen.routes(sidecar(**meta))["outbound_http"], route_pb2.RouteConfiguration())
    assert isinstance(out, route_pb2.RouteConfiguration)
    return out


def test_allow_any_catch_all_forwards_through_the_dynamic_forward_proxy() -> None:
    rc = _routes((REVIEWS,))
    star = next(v for v in rc.virtual_hosts if list(v.domains) == ["*"])
    assert star.routes[0].route.cluster == DFP_CLUSTER
    view = generator(REVIEWS).view(sidecar())
    assert DFP_CLUSTER in view.of(CLUSTER)
    listener = unpack(view.of(LISTENER)["outbound_http"], listener_pb2.Listener())
    assert isinstance(listener, listener_pb2.Listener)
    hcm = hcm_pb2.HttpConnectionManager()
    listener.filter_chains[0].filters[0].typed_config.Unpack(hcm)
    assert DFP_FILTER in [f.name for f in hcm.http_filters]


def test_registry_only_answers_502_and_a_selector_wins_over_the_namespace() -> None:
    rc = _routes((REVIEWS, REGISTRY_ONLY))
    star = next(v for v in rc.virtual_hosts if list(v.domains) == ["*"])
    assert star.routes[0].direct_response.status == 502
    selected = REGISTRY_ONLY.replace("name: default, namespace", "name: c, namespace").replace(
        "spec: {outboundTrafficPolicy: {mode: REGISTRY_ONLY}}",
        "spec: {workloadSelector: {labels: {app: client}}, "
        "outboundTrafficPolicy: {mode: ALLOW_ANY}}",
    )
    rc = _routes((REVIEWS, REGISTRY_ONLY, selected))
    star = next(v for v in rc.virtual_hosts if list(v.domains) == ["*"])
    assert star.routes[0].route.cluster == DFP_CLUSTER


def test_local_rate_limit_on_selected_inbound_listener_enforced_at_100_percent() -> None:
    limit = """
apiVersion: shoal.dev/v1alpha1
kind: LocalRateLimit
metadata: {name: client, namespace: default}
spec: {workloadSelector: {labels: {app: client}}, maxTokens: 10, fillInterval: 1s}
"""
    gen = generator(REVIEWS, limit)

    def filters(name: str) -> list[hcm_pb2.HttpFilter]:
        proxy = sidecar(name=name, INBOUND_PORT="15006", APP_PORT="8080")
        listener = unpack(gen.listeners(proxy)["inbound_http"], listener_pb2.Listener())
        assert isinstance(listener, listener_pb2.Listener)
        hcm = hcm_pb2.HttpConnectionManager()
        listener.filter_chains[0].filters[0].typed_config.Unpack(hcm)
        return list(hcm.http_filters)

    chosen = filters("client")
    assert chosen[0].name == "envoy.filters.http.local_ratelimit"
    config = local_rate_limit_pb2.LocalRateLimit()
    chosen[0].typed_config.Unpack(config)
    assert config.token_bucket.max_tokens == 10
    assert config.filter_enabled.default_value.numerator == 100
    assert config.filter_enforced.default_value.numerator == 100
    assert [f.name for f in filters("other")] == [f.name for f in chosen[1:]]


def _router_view(*texts: str, credentials: dict[str, Credential] | None = None) -> ProxyView:
    result = ConfigStore().update({f"f{i}.yaml": t for i, t in enumerate(texts)})
    assert not result.errors, [str(e) for e in result.errors]
    snap = build_snapshot("t.1", result.resources, credentials=credentials)
    router = parse_proxy(
        "router~127.0.0.1~ingress.default~default.svc.cluster.local",
        {"LABELS": {"istio": "ingressgateway"}, "INSTANCE_IPS": "127.0.0.1"},
    )
    return ConfigGenerator(snap).view(router)


def test_router_gets_one_listener_per_server_port_and_gateway_routes_only() -> None:
    cred = {"shop": Credential("shop", "CERT", "KEY")}
    view = _router_view(REVIEWS, GATEWAY, credentials=cred)
    assert set(view.of(LISTENER)) == {"127.0.0.1_8080", "127.0.0.1_8443", "127.0.0.1_9000"}
    assert set(view.of(ROUTE)) == {"http.8080", "http.8443"}
    rc = unpack(view.of(ROUTE)["http.8080"], route_pb2.RouteConfiguration())
    assert isinstance(rc, route_pb2.RouteConfiguration)
    assert [list(v.domains) for v in rc.virtual_hosts] == [["shop.example.com"]]
    https = unpack(view.of(LISTENER)["127.0.0.1_8443"], listener_pb2.Listener())
    assert isinstance(https, listener_pb2.Listener)
    assert https.filter_chains[0].transport_socket.name == "envoy.transport_sockets.tls"
    tcp = unpack(view.of(LISTENER)["127.0.0.1_9000"], listener_pb2.Listener())
    assert isinstance(tcp, listener_pb2.Listener)
    proxy = tcp_proxy_pb2.TcpProxy()
    tcp.filter_chains[0].filters[0].typed_config.Unpack(proxy)
    weights = {c.name.split("|")[2]: c.weight for c in proxy.weighted_clusters.clusters}
    assert weights == {"v1": 50, "v2": 50}


def test_https_server_without_its_credential_is_not_served() -> None:
    view = _router_view(REVIEWS, GATEWAY)
    assert "127.0.0.1_8443" not in view.of(LISTENER)


def test_gateway_only_virtual_service_stays_off_sidecars() -> None:
    snap = snapshot(REVIEWS, GATEWAY)
    assert snap.gateways and "shop.example.com" not in snap.vs_by_host
    rc = _routes((REVIEWS, GATEWAY))
    assert all("shop.example.com" not in v.domains for v in rc.virtual_hosts)
