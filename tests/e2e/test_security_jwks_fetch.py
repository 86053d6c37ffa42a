"""`jwksUri` over http: the control plane fetches the keys from a local JWKS server and a real
Envoy checks tokens with them; it keeps the last good keys while the issuer answers 503 or
too slowly for the rule's `timeout`, and picks up rotated keys on its next refresh.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from harness.backend import Backend
from harness.configdir import ConfigDir
from harness.controlplane import ControlPlane, wait_synced
from harness.envoy import EnvoyProcess
from harness.secmesh import SecureMesh, call, service_entry
from harness.wait import wait_until

pytestmark = pytest.mark.envoy

ISSUER = "https://issuer.example"


def _jwks(key: rsa.RSAPrivateKey, kid: str) -> str:
    jwk = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return json.dumps({"keys": [{**jwk, "kid": kid, "alg": "RS256", "use": "sig"}]})


def _token(key: rsa.RSAPrivateKey, kid: str) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "sub": "alice", "aud": "reviews", "iat": now, "exp": now + 600}
    return pyjwt.encode(body, key, algorithm="RS256", headers={"kid": kid})


class JwksServer:
    """An issuer's JWKS endpoint on 127.0.0.1: serves `body`, or 503 (`down`), or answers
    after `delay_s` (slow)."""

    def __init__(self) -> None:
        self.body = ""
        self.down = False
        self.delay_s = 0.0
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                time.sleep(server.delay_s)
                data = server.body.encode()
                self.send_response(503 if server.down else 200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                try:
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the control plane gave up waiting (its timeout): as intended

            def log_message(self, *args: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.delay_s = 0.0
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.close()


def test_keys_fetched_over_http_kept_while_the_issuer_is_down_and_rotated(
    config_dir: ConfigDir,
    envoy_factory: Callable[..., EnvoyProcess],
    control_plane_factory: Callable[..., ControlPlane],
    backend_factory: Callable[[str], Backend],
    jwks_server: JwksServer,
) -> None:
    key1 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks_server.body = _jwks(key1, "k1")
    cp = control_plane_factory(config_dir, extra_args=["--jwks-refresh", "0.5"])
    secmesh = SecureMesh(config_dir, envoy_factory, cp)
    try:
        _scenario(secmesh, backend_factory("reviews"), jwks_server, key1, key2)
    finally:
        secmesh.stop()


def _scenario(
    secmesh: SecureMesh,
    app: Backend,
    jwks_server: JwksServer,
    key1: rsa.RSAPrivateKey,
    key2: rsa.RSAPrivateKey,
) -> None:
    cp, config_dir = secmesh.cp, secmesh.config
    server = secmesh.sidecar("reviews", app_port=app.port)
    config_dir.write("reviews-se.yaml", service_entry(server.inbound))
    wait_synced(cp, 1, 15)
    port = server.inbound

    def status(token: str | None = None) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return call(port, "/items/1", headers=headers)[0]

    def until(predicate: Callable[[], bool], what: str) -> None:
        wait_until(predicate, 15, interval=0.2, what=what, describe=cp.describe)

    good, rotated = _token(key1, "k1"), _token(key2, "k2")
    # baseline: no RequestAuthentication, a token nobody can check still passes
    until(lambda: status(rotated) == 200, "baseline")

    config_dir.write("jwt.yaml", f"""apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: reviews, namespace: default}}
spec:
  selector: {{matchLabels: {{app: reviews}}}}
  jwtRules:
  - issuer: {ISSUER}
    audiences: [reviews]
    jwksUri: http://127.0.0.1:{jwks_server.port}/jwks.json
    timeout: 1s
""")  # fmt: skip
    until(lambda: status(rotated) == 401, "a token the fetched keys do not verify to get 401")
    assert status(good) == 200 and status() == 200  # no token: allowed (Istio)
    assert jwks_server.hits >= 1

    # the issuer is down: the control plane keeps the last good keys
    jwks_server.down = True
    until(lambda: "fetch failed (HTTP 503); keeping the last good keys" in cp.stderr_text(), "503")
    hits = jwks_server.hits
    until(lambda: jwks_server.hits >= hits + 2, "refreshes while down")
    assert status(good) == 200 and status(rotated) == 401

    # too slow for the rule's 1 s timeout: the same
    jwks_server.down, jwks_server.delay_s = False, 3.0
    until(lambda: "fetch failed (TimeoutError)" in cp.stderr_text(), "a fetch to time out")
    assert status(good) == 200

    # the issuer rotates its key: the next refresh serves the new one
    jwks_server.body, jwks_server.delay_s = _jwks(key2, "k2"), 0.0
    until(lambda: status(rotated) == 200, "the rotated key to verify")
    assert status(good) == 401
