"""Where a RequestAuthentication looks for the token and what reaches the app, through a real
Envoy: `fromHeaders` (with its `prefix`), `fromParams`, `fromCookies`, `forwardOriginalToken`
and `outputPayloadToHeader`. Each location is tried with a valid and a forged token: the valid
one passes, the forged one gets 401 (so the token was read there, not ignored).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from harness.backend import Backend
from harness.configdir import ConfigDir
from harness.controlplane import wait_synced
from harness.secmesh import SecureMesh, call, service_entry
from harness.wait import wait_until

pytestmark = pytest.mark.envoy

ISSUER = "https://issuer.example"


def _token(key: rsa.RSAPrivateKey) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "sub": "alice", "aud": "reviews", "iat": now, "exp": now + 600}
    return pyjwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"})


def test_token_locations_forwarding_and_payload_header(
    secmesh: SecureMesh, backend_factory: Callable[[str], Backend], config_dir: ConfigDir
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks = json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]})
    app = backend_factory("reviews")
    server = secmesh.sidecar("reviews", app_port=app.port)
    config_dir.write("reviews-se.yaml", service_entry(server.inbound))
    wait_synced(secmesh.cp, 1, 15)
    port = server.inbound
    good, forged = _token(key), _token(forger)

    def send(path: str = "/items/1", **headers: str) -> tuple[int, dict[str, str]]:
        status, _, body = call(port, path, headers=headers)
        return status, (json.loads(body)["headers"] if status == 200 else {})

    wait_until(lambda: send()[0] == 200, 10, interval=0.2, what="baseline")
    config_dir.write("jwt.yaml", f"""apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: reviews, namespace: default}}
spec:
  selector: {{matchLabels: {{app: reviews}}}}
  jwtRules:
  - issuer: {ISSUER}
    audiences: [reviews]
    jwks: '{jwks}'
    fromHeaders: [{{name: x-token, prefix: "Token "}}]
    fromParams: [tok]
    fromCookies: [session]
    forwardOriginalToken: true
    outputPayloadToHeader: x-jwt-payload
""")  # fmt: skip
    wait_until(
        lambda: send(**{"x-token": f"Token {forged}"})[0] == 401,
        10,
        interval=0.2,
        what="a forged token in x-token to get 401",
    )
    status, seen = send(**{"x-token": f"Token {good}"})
    assert status == 200
    assert seen.get("x-token") == f"Token {good}"  # forwardOriginalToken: the app gets it
    payload = json.loads(base64.urlsafe_b64decode(seen["x-jwt-payload"] + "=="))
    assert (payload["iss"], payload["sub"]) == (ISSUER, "alice")
    assert send(f"/items/1?tok={good}")[0] == 200
    assert send(f"/items/1?tok={forged}")[0] == 401
    assert send(cookie=f"session={good}")[0] == 200
    assert send(cookie=f"session={forged}")[0] == 401
    # only the locations the rule names are read: Authorization is not one of them now
    assert send(authorization=f"Bearer {forged}")[0] == 200
