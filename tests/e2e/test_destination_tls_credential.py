"""DestinationRule `tls.credentialName` (istio.io's mutual TLS origination task): a sidecar
originates mutual TLS to a server outside the mesh with the client certificate, key and CA of
a credential (`secrets/NAME/` with tls.crt, tls.key, ca.crt), through real Envoy to a real TLS
server that requires client certificates from its own CA.
"""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.configdir import ConfigDir
from harness.edges import get, self_signed
from harness.envoy import EnvoyProcess
from harness.mesh import Mesh
from harness.sds import TestCA, spiffe
from harness.wait import wait_until

pytestmark = pytest.mark.envoy
NGINX = "my-nginx.mesh-external.svc.cluster.local"


class _Peer(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # (http.server's name for it)
        assert isinstance(self.connection, ssl.SSLSocket)
        peer = self.connection.getpeercert() or {}
        uris = [v for k, v in peer.get("subjectAltName", ()) if k == "URI"]
        body = (uris[0] if uris else "none").encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, str, TestCA]]:
    """An HTTPS server requiring a client certificate of its CA: (port, its cert PEM, CA)."""
    cert_pem, _ = self_signed(tmp_path / "server", NGINX)
    clients = TestCA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server" / "tls.crt", tmp_path / "server" / "tls.key")
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=clients.root_pem)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Peer)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], cert_pem, clients
    server.shutdown()
    server.server_close()


def test_mutual_tls_origination_with_a_credential(
    mesh: Mesh,
    envoy_factory: Callable[..., EnvoyProcess],
    config_dir: ConfigDir,
    tls_server: tuple[int, str, TestCA],
) -> None:
    port, server_pem, clients = tls_server
    config_dir.write("nginx.yaml", f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: originate-mtls-for-nginx, namespace: default}}
spec:
  hosts: [{NGINX}]
  ports:
  - {{number: 80, name: http-port, protocol: HTTP, targetPort: {port}}}
  resolution: STATIC
  endpoints: [{{address: 127.0.0.1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: originate-mtls-for-nginx, namespace: default}}
spec:
  host: {NGINX}
  trafficPolicy:
    portLevelSettings:
    - port: {{number: 80}}
      tls:
        mode: MUTUAL
        credentialName: client-credential
        sni: {NGINX}
""")  # fmt: skip
    mesh.start()
    sidecar = mesh.sidecar()

    # baseline: the credential does not exist yet, the cluster stays plaintext: the TLS
    # server answers nothing useful
    wait_until(lambda: get(sidecar.outbound_port, NGINX)[0] >= 500, 15, interval=0.2,
               what="plaintext to a TLS server fails", describe=sidecar.envoy.describe)  # fmt: skip
    secret = config_dir.path / "secrets" / "client-credential"
    secret.mkdir(parents=True)
    cert, key = clients.issue(spiffe("curl"))
    (secret / "ca.crt").write_text(server_pem)
    (secret / "tls.key").write_text(key)
    (secret / "tls.crt").write_text(cert)
    wait_until(lambda: get(sidecar.outbound_port, NGINX)[0] == 200, 15, interval=0.2,
               what="mutual TLS with the credential", describe=sidecar.envoy.describe)  # fmt: skip
    _, _, body = get(sidecar.outbound_port, NGINX, "/")
    assert body.decode() == spiffe("curl")  # the server saw the credential's certificate

    # a ca.crt that does not sign the server's certificate: Envoy refuses the server
    other_pem, _ = self_signed(config_dir.path.parent / "other", NGINX)
    (secret / "ca.crt").write_text(other_pem)
    wait_until(lambda: get(sidecar.outbound_port, NGINX)[0] == 503, 15, interval=0.2,
               what="an untrusted server refused", describe=sidecar.envoy.describe)  # fmt: skip
