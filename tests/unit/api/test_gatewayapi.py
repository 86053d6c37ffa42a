"""Gateway API kinds: validation errors name file, line and field; status conditions
(Accepted, ResolvedRefs) carry the spec's reasons; cross-namespace references need a
ReferenceGrant."""

from __future__ import annotations

import pytest

from shoal.api import ConfigError, parse_file
from shoal.api.gatewayapi import GATEWAY_KIND
from shoal.api.gatewayapi.attach import Condition, gateway_api_status
from shoal.api.gatewayapi.gateway import GatewaySpec as K8sGatewaySpec
from shoal.api.gatewayapi.kubestatus import gateway_status_body, route_status_body
from shoal.api.load import parse_documents
from shoal.api.validate import validate_references

SERVICES = {
    "web.default.svc.cluster.local": {80},
    "api.shop.svc.cluster.local": {8080},
    "two.default.svc.cluster.local": {80, 81},
}

GATEWAY = """apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  gatewayClassName: shoal
  listeners:
  - {name: http, port: 8080, protocol: HTTP}
  - {name: shop, port: 8081, protocol: HTTP, hostname: "*.shop.example.com",
     allowedRoutes: {namespaces: {from: All}}}
---
"""


def _route(spec: str, namespace: str = "default", kind: str = "HTTPRoute") -> str:
    return f"""apiVersion: gateway.networking.k8s.io/v1
kind: {kind}
metadata: {{name: r, namespace: {namespace}}}
spec:
{spec}
---
"""


def _check(text: str) -> tuple[list[ConfigError], dict[str, tuple[Condition, ...]]]:
    resources, errors = parse_file("routes.yaml", text)
    assert errors == [], errors
    _, ref_errors = validate_references(resources, known_hosts=SERVICES)
    status = gateway_api_status(resources, SERVICES.get)
    conditions = {
        f"{k[1]}/{k[2]}/{i}": p.conditions
        for k, s in status.routes.items()
        for i, p in enumerate(s.parents)
    }
    return ref_errors, conditions


def _reasons(conditions: tuple[Condition, ...]) -> dict[str, str]:
    return {c.type: c.reason for c in conditions}


def test_an_attached_route_with_resolved_backends_is_accepted() -> None:
    errors, conditions = _check(
        GATEWAY + _route("  parentRefs: [{name: edge, sectionName: http}]\n"
                         "  rules: [{backendRefs: [{name: web, port: 80}]}]")
    )  # fmt: skip
    assert errors == []
    assert _reasons(conditions["default/r/0"]) == {
        "Accepted": "Accepted",
        "ResolvedRefs": "ResolvedRefs",
    }


@pytest.mark.parametrize(
    ("spec", "namespace", "field", "reason"),
    [
        (
            "  parentRefs: [{name: nowhere}]\n  rules: [{backendRefs: [{name: web, port: 80}]}]",
            "default",
            "spec.parentRefs[0]",
            "NoMatchingParent",
        ),
        (
            "  parentRefs: [{name: edge, sectionName: nope}]\n"
            "  rules: [{backendRefs: [{name: web, port: 80}]}]",
            "default",
            "spec.parentRefs[0]",
            "NoMatchingParent",
        ),
        (  # listener http takes routes of its own namespace only (from: Same, the default)
            "  parentRefs: [{name: edge, namespace: default, sectionName: http}]\n"
            "  rules: [{backendRefs: [{name: api, port: 8080}]}]",
            "shop",
            "spec.parentRefs[0]",
            "NotAllowedByListeners",
        ),
        (
            "  parentRefs: [{name: edge, sectionName: shop}]\n  hostnames: [example.org]\n"
            "  rules: [{backendRefs: [{name: web, port: 80}]}]",
            "default",
            "spec.parentRefs[0]",
            "NoMatchingListenerHostname",
        ),
        (
            "  parentRefs: [{name: edge}]\n  rules: [{backendRefs: [{name: gone, port: 80}]}]",
            "default",
            "spec.rules[0].backendRefs[0].name",
            "BackendNotFound",
        ),
        (
            "  parentRefs: [{name: edge}]\n  rules: [{backendRefs: [{name: web, port: 81}]}]",
            "default",
            "spec.rules[0].backendRefs[0].port",
            "BackendNotFound",
        ),
        (
            "  parentRefs: [{name: edge}]\n  rules: [{backendRefs: [{name: two}]}]",
            "default",
            "spec.rules[0].backendRefs[0].port",
            "BackendNotFound",
        ),
        (  # another namespace's Service, and no ReferenceGrant there
            "  parentRefs: [{name: edge}]\n"
            "  rules: [{backendRefs: [{name: api, namespace: shop, port: 8080}]}]",
            "default",
            "spec.rules[0].backendRefs[0].namespace",
            "RefNotPermitted",
        ),
        (
            "  parentRefs: [{name: edge}]\n"
            "  rules: [{backendRefs: [{name: x, kind: ConfigMap, port: 80}]}]",
            "default",
            "spec.rules[0].backendRefs[0].kind",
            "InvalidKind",
        ),
        (  # GAMMA: the parent Service must exist
            "  parentRefs: [{group: '', kind: Service, name: ghost}]\n"
            "  rules: [{backendRefs: [{name: web, port: 80}]}]",
            "default",
            "spec.parentRefs[0]",
            "NoMatchingParent",
        ),
    ],
)
def test_unresolved_parents_and_references_are_errors_with_the_spec_reason(
    spec: str, namespace: str, field: str, reason: str
) -> None:
    text = GATEWAY + _route(spec, namespace)
    errors, conditions = _check(text)
    assert [(e.file, e.field, e.kind) for e in errors] == [("routes.yaml", field, "HTTPRoute")]
    assert errors[0].message.startswith(reason + ": "), errors[0]
    # the line is the field's own (a missing field: the line of the object that lacks it)
    line = text.splitlines()[errors[0].line - 1]
    names = [part.split("[", maxsplit=1)[0] for part in field.split(".")[1:]]
    assert names[-1] in line or (names[-1] == "port" and "name: two" in line), line
    reasons = {r for c in conditions.values() for r in _reasons(c).values()}
    assert reason in reasons, conditions


def test_a_reference_grant_permits_the_cross_namespace_backend() -> None:
    grant = """apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: from-default, namespace: shop}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: default}]
  to: [{group: "", kind: Service, name: api}]
---
"""
    route = _route(
        "  parentRefs: [{name: edge}]\n"
        "  rules: [{backendRefs: [{name: api, namespace: shop, port: 8080}]}]"
    )
    errors, conditions = _check(GATEWAY + grant + route)
    assert errors == []
    assert _reasons(conditions["default/r/0"])["ResolvedRefs"] == "ResolvedRefs"
    # a grant for GRPCRoutes only does not cover an HTTPRoute
    errors, _ = _check(GATEWAY + grant.replace("kind: HTTPRoute", "kind: GRPCRoute") + route)
    assert [e.message.split(":")[0] for e in errors] == ["RefNotPermitted"]


def test_gateways_of_other_controllers_are_not_served() -> None:
    other = GATEWAY.replace("gatewayClassName: shoal", "gatewayClassName: other") + (
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: other}\n"
        "spec: {controllerName: example.com/controller}\n---\n"
    )
    resources, errors = parse_file("gw.yaml", other)
    assert errors == []
    _, errors = validate_references(resources, known_hosts=SERVICES)
    assert [(e.kind, e.field) for e in errors] == [(GATEWAY_KIND, "spec.gatewayClassName")]
    assert "not to shoal" in errors[0].message
    # Istio's controller is served, so Istio users' YAML works unchanged
    istio = other.replace("example.com/controller", "istio.io/gateway-controller")
    resources, _ = parse_file("gw.yaml", istio)
    assert validate_references(resources, known_hosts=SERVICES)[1] == []


@pytest.mark.parametrize(
    ("doc", "field", "says"),
    [
        (
            "kind: Gateway\nspec:\n  gatewayClassName: shoal\n  listeners:\n"
            "  - {name: a, port: 443, protocol: HTTPS}\n",
            "spec.listeners[0].tls.certificateRefs",
            "an HTTPS listener needs tls.certificateRefs",
        ),
        (
            "kind: Gateway\nspec:\n  gatewayClassName: shoal\n  listeners:\n"
            "  - {name: a, port: 80, protocol: HTTP}\n  - {name: a, port: 81, protocol: HTTP}\n",
            "spec.listeners[1].name",
            "listener name 'a'",
        ),
        (
            "kind: Gateway\nspec:\n  gatewayClassName: shoal\n  listeners:\n"
            "  - {name: a, port: 80, protocol: UDP}\n",
            "spec.listeners[0].protocol",
            "HTTP",
        ),
        (
            "kind: HTTPRoute\nspec:\n  rules:\n  - matches:\n"
            "    - path: {type: PathPrefix, value: nope}\n",
            "spec.rules[0].matches[0].path.value",
            "must start with '/'",
        ),
        (
            "kind: HTTPRoute\nspec:\n  rules:\n  - matches:\n"
            "    - path: {type: RegularExpression, value: '(('}\n",
            "spec.rules[0].matches[0].path.value",
            "",
        ),
        (
            "kind: HTTPRoute\nspec:\n  rules:\n  - filters:\n    - type: ExtensionRef\n",
            "spec.rules[0].filters[0].type",
            "not implemented yet",
        ),
        (
            "kind: HTTPRoute\nspec:\n  rules:\n  - filters:\n    - type: RequestRedirect\n",
            "spec.rules[0].filters[0].requestRedirect",
            "needs requestRedirect",
        ),
        (  # found by tests/property/test_envoy_accepts_gatewayapi.py
            "kind: HTTPRoute\nspec:\n  rules:\n  - filters:\n    - type: RequestRedirect\n"
            "      requestRedirect: {statusCode: 301}\n",
            "spec.rules[0].filters[0].requestRedirect.statusCode",
            "needs scheme, hostname, path or port",
        ),
        (
            "kind: HTTPRoute\nspec:\n  rules:\n  - timeouts: {request: 10 seconds}\n",
            "spec.rules[0].timeouts.request",
            "not a Gateway API duration",
        ),
        (
            "kind: HTTPRoute\nspec:\n  rules:\n  - timeouts: {request: 1s, backendRequest: 2s}\n",
            "spec.rules[0].timeouts.backendRequest",
            "longer than request",
        ),
        (
            "kind: GRPCRoute\nspec:\n  rules:\n  - matches: [{method: {type: Exact}}]\n",
            "spec.rules[0].matches[0].method.service",
            "service, method or both",
        ),
        (
            "kind: GRPCRoute\nspec:\n  rules:\n  - filters:\n    - type: URLRewrite\n"
            "      urlRewrite: {hostname: a.example.com}\n",
            "spec.rules[0].filters[0].type",
            "not URLRewrite",
        ),
        (  # valid Gateway API that shoal lacks: not implemented, never "unknown field"
            "kind: Gateway\nspec:\n  gatewayClassName: shoal\n  listeners:\n"
            "  - name: a\n    port: 443\n    protocol: HTTPS\n    tls:\n"
            "      certificateRefs: [{name: c}]\n      options: {x: y}\n",
            "spec.listeners[0].tls.options",
            "a Gateway API field that shoal does not implement yet",
        ),
        (
            "kind: Gateway\nspec:\n  gatewayClassName: shoal\n  listeners:\n"
            "  - name: a\n    port: 80\n    protocol: HTTP\n"
            "    allowedRoutes: {namespaces: {from: Selector}}\n",
            "spec.listeners[0].allowedRoutes.namespaces.from",
            "not implemented yet",
        ),
        (
            "kind: HTTPRoute\nspec:\n  rules:\n  - sessionPersistence: {sessionName: s}\n",
            "spec.rules[0].sessionPersistence",
            "does not implement yet",
        ),
        (
            "kind: TCPRoute\nspec: {}\n",
            "kind",
            "not implemented yet",
        ),
    ],
)
def test_invalid_documents_name_file_line_and_field(doc: str, field: str, says: str) -> None:
    version = "v1alpha2" if "TCPRoute" in doc else "v1"
    text = f"apiVersion: gateway.networking.k8s.io/{version}\nmetadata: {{name: x}}\n{doc}"
    result = parse_documents("bad.yaml", text)
    errors = result.errors
    assert [e.field for e in errors] == [field], errors
    assert says in errors[0].message, errors[0]
    assert errors[0].file == "bad.yaml" and errors[0].line >= 3


def test_an_istio_gateway_and_a_gateway_api_gateway_may_share_a_name() -> None:
    istio = """apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
---
"""
    resources, errors = parse_file("both.yaml", istio + GATEWAY)
    assert errors == []
    assert sorted(r.kind for r in resources) == ["Gateway", GATEWAY_KIND]
    assert validate_references(resources, known_hosts=SERVICES)[1] == []


def test_status_bodies_have_the_shape_of_the_gateway_api_crds() -> None:
    route = _route(
        "  parentRefs: [{name: edge, sectionName: http}, {name: nowhere}]\n"
        "  rules: [{backendRefs: [{name: web, port: 80}]}]"
    )
    resources, _ = parse_file("r.yaml", GATEWAY + route)
    status = gateway_api_status(resources, SERVICES.get)
    (route_status,) = status.routes.values()
    body = route_status_body(route_status, "default", 4, "2026-01-01T00:00:00Z")
    first, second = body["parents"]
    assert first["parentRef"] == {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "namespace": "default",
        "name": "edge",
        "sectionName": "http",
    }
    assert first["controllerName"] == "shoal.dev/gateway-controller"
    assert [(c["type"], c["status"], c["observedGeneration"]) for c in first["conditions"]] == [
        ("Accepted", "True", 4),
        ("ResolvedRefs", "True", 4),
    ]
    assert second["conditions"][0]["reason"] == "NoMatchingParent"

    (gw_key,) = status.gateways
    gw = next(r for r in resources if r.key == gw_key)
    assert isinstance(gw.spec, K8sGatewaySpec)
    gw_body = gateway_status_body(status.gateways[gw_key], gw.spec, 2, "t")
    assert [c["type"] for c in gw_body["conditions"]] == ["Accepted", "Programmed", "ResolvedRefs"]
    # the route is refused as a whole (one parent does not exist), so nothing attached
    assert [(lst["name"], lst["attachedRoutes"]) for lst in gw_body["listeners"]] == [
        ("http", 0),
        ("shop", 0),
    ]
    assert {"group": "gateway.networking.k8s.io", "kind": "GRPCRoute"} in gw_body["listeners"][0][
        "supportedKinds"
    ]
