"""Gateway API onto the Istio model (model/gatewayapi.py): what Gateways and VirtualServices
the kinds stand for, and that a snapshot serves them."""

from __future__ import annotations

from typing import Any

from shoal.api import parse_text
from shoal.api.gatewayapi import GATEWAY_NAME_LABEL
from shoal.api.virtualservice import VirtualServiceSpec
from shoal.model.build import build_snapshot
from shoal.model.gatewayapi import translate

SERVICES = """apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web}
spec:
  hosts: [web, grpc]
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1}]
---
"""
GATEWAY = """apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  gatewayClassName: shoal
  listeners:
  - {name: http, port: 8080, protocol: HTTP}
  - name: https
    port: 8443
    protocol: HTTPS
    hostname: shop.example.com
    tls: {certificateRefs: [{name: shop-cert}]}
  - {name: raw, port: 9000, protocol: TCP}
---
"""


def _http(vs: Any) -> list[dict[str, Any]]:
    assert isinstance(vs.spec, VirtualServiceSpec)
    return [r.model_dump(by_alias=True, exclude_defaults=True) for r in vs.spec.http]


def test_a_gateway_becomes_one_istio_gateway_per_http_listener() -> None:
    out = translate(parse_text(SERVICES + GATEWAY))
    assert [(r.kind, r.meta.name) for r in out] == [
        ("Gateway", "edge.http.gateway-api"),
        ("Gateway", "edge.https.gateway-api"),
    ]
    https = out[1].spec.model_dump(by_alias=True, exclude_defaults=True)
    assert https["selector"] == {GATEWAY_NAME_LABEL: "edge"}
    (server,) = https["servers"]
    assert server["hosts"] == ["*/shop.example.com"]
    assert server["tls"] == {"mode": "SIMPLE", "credentialName": "shop-cert"}


def test_routes_of_one_host_are_merged_in_the_specs_precedence() -> None:
    routes = """apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: a}
spec:
  parentRefs: [{name: edge, sectionName: http}]
  rules:
  - matches: [{path: {value: /}}]
    backendRefs: [{name: web, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: b}
spec:
  parentRefs: [{name: edge, sectionName: http}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /long/er}}, {path: {type: Exact, value: /x}}]
    backendRefs: [{name: web, port: 80, weight: 1}, {name: grpc, port: 80, weight: 2}]
---
"""
    out = translate(parse_text(SERVICES + GATEWAY + routes))
    (vs,) = [r for r in out if r.kind == "VirtualService"]
    assert vs.spec.gateways == ["default/edge.http.gateway-api"]
    uris = [h["match"][0]["uri"] for h in _http(vs)]
    # exact before prefixes, longer prefixes first; PathPrefix matches by segment
    assert uris == [
        {"exact": "/x"},
        {"exact": "/long/er"},
        {"prefix": "/long/er/"},
        {"prefix": "/"},
    ]
    assert [d["weight"] for d in _http(vs)[0]["route"]] == [33, 67]


def test_grpc_method_matches_become_paths() -> None:
    route = """apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: g}
spec:
  parentRefs: [{name: edge, sectionName: http}]
  rules:
  - matches: [{method: {service: shop.Cart, method: Add}}]
    backendRefs: [{name: grpc, port: 80}]
  - matches: [{method: {service: shop.Cart}}, {method: {method: Ping}}]
    backendRefs: [{name: web, port: 80}]
---
"""
    out = translate(parse_text(SERVICES + GATEWAY + route))
    (vs,) = [r for r in out if r.kind == "VirtualService"]
    assert [h["match"][0]["uri"] for h in _http(vs)] == [
        {"exact": "/shop.Cart/Add"},
        {"prefix": "/shop.Cart/"},
        {"regex": "/[^/]+/Ping"},
    ]


def test_gamma_a_service_parent_configures_the_mesh_for_that_host() -> None:
    route = """apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: canary}
spec:
  parentRefs: [{group: "", kind: Service, name: web, port: 80}]
  rules:
  - backendRefs: [{name: web, port: 80, weight: 9}, {name: grpc, port: 80, weight: 1}]
---
"""
    snapshot = build_snapshot("1", parse_text(SERVICES + route))
    (vs,) = snapshot.vs_by_host["web.default.svc.cluster.local"]
    assert vs.spec.gateways == [] and vs.spec.hosts == ["web.default.svc.cluster.local"]
    (http,) = _http(vs)
    assert http["match"] == [{"uri": {"prefix": "/"}, "port": 80}]
    assert [d["weight"] for d in http["route"]] == [90, 10]
