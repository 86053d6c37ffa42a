"""Security policies bound to a gateway by `targetRef` (Istio's ingress tasks), through real
Envoys: two gateway proxies serve the same VirtualService; the policies name one of them as
a Gateway API Gateway (`kind: Gateway, group: gateway.networking.k8s.io`), whose proxy
carries Istio's `gateway.networking.k8s.io/gateway-name` label. The named one enforces them,
the other does not.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from harness.configdir import ConfigDir
from harness.edges import router_bootstrap
from harness.envoy import EnvoyProcess
from harness.mesh import HOST, Mesh
from harness.ports import free_port
from harness.wait import wait_until

pytestmark = pytest.mark.envoy

ISSUER = "testing@secure.istio.io"
NAMED = {"gateway.networking.k8s.io/gateway-name": "httpbin-gateway"}
OTHER = {"istio": "other-gateway"}


def _gateway(name: str, labels: dict[str, str], port: int) -> str:
    return f"""apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: default}}
spec:
  selector: {json.dumps(labels)}
  servers:
  - port: {{number: {port}, name: http, protocol: HTTP}}
    hosts: ["*"]
"""


VS = f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: shop, namespace: default}}
spec:
  hosts: ["*"]
  gateways: [default/named, default/other]
  http:
  - route:
    - destination: {{host: {HOST}, subset: v1, port: {{number: 80}}}}
"""
TARGET = """  targetRef:
    kind: Gateway
    group: gateway.networking.k8s.io
    name: httpbin-gateway
"""


def _policy(name: str, body: str) -> str:
    return f"""apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: {name}, namespace: default}}
spec:
{TARGET}{body}"""


def _status(port: int, path: str = "/", token: str = "") -> int:
    headers = {"Host": "shop.example.com"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    try:
        conn.request("GET", path, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def _routers(
    mesh: Mesh, envoy_factory: Callable[..., EnvoyProcess], config_dir: ConfigDir
) -> tuple[int, int]:
    named, other = free_port(), free_port()
    config_dir.write("gateways.yaml", f"{_gateway('named', NAMED, named)}---\n"
                     f"{_gateway('other', OTHER, other)}---\n{VS}")  # fmt: skip
    cp = mesh.start()
    envoy_factory(router_bootstrap(cp.xds_port, "httpbin-gateway", NAMED), name="named")
    envoy_factory(router_bootstrap(cp.xds_port, "other-gateway", OTHER), name="other")
    for port in (named, other):
        wait_until(lambda p=port: _status(p) == 200, 15, interval=0.2, what="baseline")
    return named, other


def test_authorization_policy_with_target_ref_applies_to_the_named_gateway_only(
    mesh: Mesh, envoy_factory: Callable[..., EnvoyProcess], config_dir: ConfigDir
) -> None:
    named, other = _routers(mesh, envoy_factory, config_dir)
    assert _status(named, "/headers") == 200

    config_dir.write("deny.yaml", _policy("deny-headers", """  action: DENY
  rules: [{to: [{operation: {paths: ["/headers"]}}]}]
"""))  # fmt: skip
    wait_until(lambda: _status(named, "/headers") == 403, 10, interval=0.2, what="DENY")
    assert _status(named, "/other") == 200
    assert _status(other, "/headers") == 200  # not the targeted gateway

    # the ingress task's IP allow list: our address (127.0.0.1) is not in it
    config_dir.write("allow.yaml", _policy("ingress-policy", """  action: ALLOW
  rules: [{from: [{source: {ipBlocks: ["1.2.3.4", "5.6.7.0/24"]}}]}]
"""))  # fmt: skip
    wait_until(lambda: _status(named, "/other") == 403, 10, interval=0.2, what="ALLOW list")
    assert _status(other, "/other") == 200
    # the list form, targetRefs, names the same gateway
    config_dir.write(
        "allow.yaml",
        """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ingress-policy, namespace: default}
spec:
  targetRefs:
  - {kind: Gateway, group: gateway.networking.k8s.io, name: httpbin-gateway}
  action: ALLOW
  rules: [{from: [{source: {ipBlocks: ["127.0.0.1"]}}]}]
""",
    )
    wait_until(lambda: _status(named, "/other") == 200, 10, interval=0.2, what="our IP allowed")
    assert _status(named, "/headers") == 403  # DENY still wins


def test_request_authentication_with_target_ref_checks_tokens_at_the_named_gateway(
    mesh: Mesh, envoy_factory: Callable[..., EnvoyProcess], config_dir: ConfigDir
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks = json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "RS256"}]})
    now = int(time.time())
    token = pyjwt.encode({"iss": ISSUER, "sub": "alice", "exp": now + 600}, key,
                         algorithm="RS256", headers={"kid": "k1"})  # fmt: skip
    named, other = _routers(mesh, envoy_factory, config_dir)

    config_dir.write("jwt.yaml", f"""apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: jwt-example, namespace: default}}
spec:
{TARGET}  jwtRules:
  - issuer: {ISSUER}
    jwks: {json.dumps(jwks)}
---
{_policy("frontend-ingress", '''  action: DENY
  rules:
  - from: [{source: {notRequestPrincipals: ["*"]}}]
    to: [{operation: {paths: ["/headers"]}}]
''')}""")  # fmt: skip
    wait_until(lambda: _status(named, "/", "garbage") == 401, 10, interval=0.2, what="JWT")
    assert _status(named, "/headers") == 403  # no token: no request principal
    assert _status(named, "/headers", token) == 200
    assert _status(named, "/") == 200  # a request without a token passes, as Istio's
    assert _status(other, "/headers") == 200  # not the targeted gateway
    assert _status(other, "/", "garbage") == 200
