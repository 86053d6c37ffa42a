"""Gateway `tls.mode: PASSTHROUGH` with VirtualService `tls` routes, through a real Envoy: the
gateway reads only the SNI and forwards the TLS connection unopened to the route's backend,
which terminates it with its own certificate (a client trusting only that certificate
succeeds; the gateway holds no certificate at all). An SNI no route names is not served.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.configdir import ConfigDir
from harness.edges import get, router_bootstrap, self_signed
from harness.envoy import EnvoyProcess
from harness.mesh import Mesh
from harness.ports import free_port
from harness.wait import wait_until

pytestmark = pytest.mark.envoy

SNI = "secure.example.com"


class TlsBackend:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate for `SNI`."""

    def __init__(self, directory: Path) -> None:
        self.cert_pem, _ = self_signed(directory, SNI)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(directory / "tls.crt", directory / "tls.key")

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b"terminated by the backend\n"
                self.send_response(200)
                self.send_header("x-backend", "tls-backend")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self._http.socket = context.wrap_socket(self._http.socket, server_side=True)
        self.port = self._http.server_address[1]
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture
def tls_backend(tmp_path: Path) -> Iterator[TlsBackend]:
    backend = TlsBackend(tmp_path / "backend-cert")
    yield backend
    backend.close()


def test_passthrough_routes_tls_by_sni_to_a_backend_that_terminates_it(
    mesh: Mesh,
    envoy_factory: Callable[..., EnvoyProcess],
    config_dir: ConfigDir,
    tls_backend: TlsBackend,
) -> None:
    port = free_port()
    config_dir.write(
        "passthrough.yaml",
        f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: secure}}
spec:
  hosts: [{SNI}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 443, name: tls, protocol: TLS}}]
  endpoints: [{{address: 127.0.0.1, ports: {{tls: {tls_backend.port}}}}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: ingress}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {port}, name: tls, protocol: TLS}}
    hosts: ["{SNI}"]
    tls: {{mode: PASSTHROUGH}}
""",
    )
    cp = mesh.start()
    router = envoy_factory(router_bootstrap(cp.xds_port), name="ingress", wait="admin")
    trusting_backend = ssl.create_default_context(cadata=tls_backend.cert_pem)
    # baseline: the backend answers directly; through the gateway, no route yet, no listener
    assert get(tls_backend.port, SNI, tls=trusting_backend)[0] == 200
    with pytest.raises(OSError):
        get(port, SNI, tls=trusting_backend)

    config_dir.write(
        "routes.yaml",
        f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: secure}}
spec:
  hosts: [{SNI}]
  gateways: [ingress]
  tls:
  - match: [{{port: {port}, sniHosts: [{SNI}]}}]
    route: [{{destination: {{host: {SNI}, port: {{number: 443}}}}}}]
""",
    )
    wait_until(
        lambda: f"127.0.0.1_{port}" in router.listeners(),
        10,
        interval=0.2,
        what="the passthrough listener",
        describe=router.describe,
    )
    status, headers, body = get(port, SNI, tls=trusting_backend)
    assert (status, headers["x-backend"]) == (200, "tls-backend")
    assert body == b"terminated by the backend\n"
    # an SNI no route names matches no filter chain: the connection is closed (a client that
    # does not check the name would get through, were it forwarded)
    lax = ssl.create_default_context(cadata=tls_backend.cert_pem)
    lax.check_hostname = False
    with pytest.raises((ssl.SSLError, ConnectionError)):
        get(port, SNI, tls=lax, server_name="other.example.com")
