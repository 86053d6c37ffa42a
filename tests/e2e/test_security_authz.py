"""AuthorizationPolicy and RequestAuthentication through real Envoys.

mTLS identities come from test SDS certificates (harness/sds.py): `productpage` and `other`
call `reviews`, whose sidecar enforces the policies. Each test starts from a baseline where
the request passes, then shows what the policy changes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from harness.backend import Backend
from harness.configdir import ConfigDir
from harness.controlplane import wait_synced
from harness.secmesh import SecureMesh, call, service_entry
from harness.wait import wait_until

pytestmark = pytest.mark.envoy

ALLOW_PP_ITEMS = """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-allow, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  action: ALLOW
  rules:
  - from: [{source: {principals: [cluster.local/ns/default/sa/productpage]}}]
    to: [{operation: {methods: [GET], paths: ["/items*"]}}]
"""
DENY_SECRET = """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-deny, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  action: DENY
  rules: [{to: [{operation: {paths: ["/items/secret"]}}]}]
"""
ALLOW_NOTHING = """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing, namespace: default}
spec: {}
"""


def _status(port: int, path: str = "/items/1", method: str = "GET", **headers: str) -> int:
    return call(port, path, method=method, headers=headers)[0]


def _until(predicate: Callable[[], bool], what: str) -> None:
    wait_until(predicate, 10, interval=0.2, what=what)


def test_allow_one_account_on_get_items_deny_beats_allow_empty_allow_denies_all(
    secmesh: SecureMesh, backend_factory: Callable[[str], Backend], config_dir: ConfigDir
) -> None:
    app = backend_factory("reviews")
    server = secmesh.sidecar("reviews", app_port=app.port)
    pp = secmesh.sidecar("productpage")
    other = secmesh.sidecar("other")
    config_dir.write("reviews-se.yaml", service_entry(server.inbound))
    wait_synced(secmesh.cp, 3, 15)
    _until(lambda: _status(pp.outbound) == _status(other.outbound) == 200, "baseline 200s")
    # baseline: without a policy everyone may do anything
    assert _status(other.outbound) == 200
    assert _status(pp.outbound, "/other") == 200

    config_dir.write("allow.yaml", ALLOW_PP_ITEMS)
    _until(lambda: _status(other.outbound) == 403, "ALLOW to refuse other callers")
    status, _, body = call(other.outbound, "/items/1")
    assert (status, body) == (403, b"RBAC: access denied")
    assert _status(pp.outbound, "/items/1") == 200
    assert _status(pp.outbound, "/items") == 200
    assert _status(pp.outbound, "/other") == 403
    assert _status(pp.outbound, "/items/1", method="POST") == 403
    # a plaintext caller has no identity: refused too
    assert _status(server.inbound) == 403

    assert _status(pp.outbound, "/items/secret") == 200
    config_dir.write("deny.yaml", DENY_SECRET)
    _until(lambda: _status(pp.outbound, "/items/secret") == 403, "DENY to beat ALLOW")
    assert _status(pp.outbound, "/items/1") == 200

    config_dir.remove("deny.yaml")
    config_dir.write("allow.yaml", ALLOW_NOTHING)
    _until(lambda: _status(pp.outbound, "/items/1") == 403, "an empty ALLOW to deny all")
    assert _status(other.outbound, "/other") == 403


ISSUER = "https://issuer.example"


def _jwks(key: rsa.RSAPrivateKey) -> str:
    jwk = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]})


def _token(key: rsa.RSAPrivateKey, **claims: object) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "sub": "alice", "aud": "reviews", "iat": now, "exp": now + 600}
    return pyjwt.encode({**body, **claims}, key, algorithm="RS256", headers={"kid": "k1"})


def test_jwt_valid_passes_invalid_gets_401_and_when_on_a_claim(
    secmesh: SecureMesh,
    backend_factory: Callable[[str], Backend],
    config_dir: ConfigDir,
    tmp_path: Path,
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (config_dir.path / "jwks.json.txt").write_text(_jwks(key))
    app = backend_factory("reviews")
    server = secmesh.sidecar("reviews", app_port=app.port)
    config_dir.write("reviews-se.yaml", service_entry(server.inbound))
    wait_synced(secmesh.cp, 1, 15)
    port = server.inbound  # plaintext straight in (PERMISSIVE): JWT needs no mTLS

    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    expired = _token(key, exp=int(time.time()) - 60)
    wrong_issuer = _token(key, iss="https://evil.example")
    unsigned = pyjwt.encode({"iss": ISSUER, "sub": "alice", "aud": "reviews",
                             "exp": int(time.time()) + 600}, None, algorithm="none")  # fmt: skip
    # baseline: no RequestAuthentication, any token (even garbage) reaches the app
    _until(lambda: _status(port) == 200, "baseline")
    assert _status(port, **auth(expired)) == 200

    config_dir.write("jwt.yaml", f"""apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: reviews, namespace: default}}
spec:
  selector: {{matchLabels: {{app: reviews}}}}
  jwtRules:
  - issuer: {ISSUER}
    audiences: [reviews]
    jwksUri: file:jwks.json.txt
    outputClaimToHeaders: [{{header: x-jwt-group, claim: group}}]
""")  # fmt: skip
    _until(lambda: _status(port, **auth(expired)) == 401, "an expired token to get 401")
    status, _, body = call(port, "/items/1", headers=auth(_token(key, group="admins")))
    assert status == 200
    assert json.loads(body)["headers"].get("x-jwt-group") == "admins"
    assert _status(port, **auth(wrong_issuer)) == 401
    assert _status(port, **auth(unsigned)) == 401
    assert _status(port) == 200  # no token at all: allowed (Istio)

    config_dir.write("authz.yaml", """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: admins-only, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  rules:
  - from: [{source: {requestPrincipals: ["*"]}}]
    when: [{key: "request.auth.claims[group]", values: [admins]}]
""")  # fmt: skip
    _until(lambda: _status(port) == 403, "no token to be refused once a principal is required")
    assert _status(port, **auth(_token(key, group="admins"))) == 200
    assert _status(port, **auth(_token(key, group="users"))) == 403
    assert _status(port, **auth(_token(key, group=["users", "admins"]))) == 200
