"""Proxyless gRPC with mTLS (gRFC A29): the client's bootstrap names a file_watcher
certificate provider over its workload certificate (`shoal bootstrap grpc --cert-dir`), it
dials with `grpc.xds_channel_credentials`, and shoal's clusters tell it to speak mTLS and
which SPIFFE id the server must present. The servers are plain grpcio servers that require a
client certificate; the certificates come from a CA minted in the test.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from harness.configdir import ConfigDir
from harness.controlplane import ControlPlane
from harness.grpcbackend import GrpcBackend
from harness.grpcxdsclient import XdsClient
from harness.sds import TestCA

NS = "default"
PORT = 9000


def fqdn(name: str) -> str:
    return f"{name}.{NS}.svc.cluster.local"


def mesh(name: str, backend: GrpcBackend, service_account: str) -> str:
    """A service whose one endpoint runs as `service_account`, reached with ISTIO_MUTUAL."""
    return f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: {NS}}}
spec:
  hosts: [{fqdn(name)}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: {PORT}, name: grpc, protocol: GRPC}}]
  endpoints:
  - {{address: 127.0.0.1, ports: {{grpc: {backend.port}}}, serviceAccount: {service_account}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: {name}, namespace: {NS}}}
spec:
  host: {fqdn(name)}
  trafficPolicy: {{tls: {{mode: ISTIO_MUTUAL}}}}
"""


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[XdsClient, GrpcBackend]]:
    work = tmp_path_factory.mktemp("proxyless-mtls")
    ca = TestCA()
    server_cert, server_key = ca.issue(f"spiffe://cluster.local/ns/{NS}/sa/echo")
    backend = GrpcBackend("echo", tls=(server_cert, server_key, ca.root_pem)).start()
    certs = work / "certs"
    certs.mkdir()
    client_cert, client_key = ca.issue(f"spiffe://cluster.local/ns/{NS}/sa/client")
    (certs / "cert-chain.pem").write_text(client_cert)
    (certs / "key.pem").write_text(client_key)
    (certs / "root-cert.pem").write_text(ca.root_pem)
    config = ConfigDir(work / "config")
    config.write("echo.yaml", mesh("echo", backend, "echo"))
    # the same server, but the registry says another identity runs there
    config.write("impostor.yaml", mesh("impostor", backend, "payments"))
    cp = ControlPlane(config.path, workdir=work).start()
    client: XdsClient | None = None
    try:
        cp.wait_ready(60)
        bootstrap = work / "grpc-bootstrap.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "shoal.cli.main",
                "bootstrap",
                "grpc",
                "--workload",
                "client",
                "--service-account",
                "client",
                "--control-plane",
                f"127.0.0.1:{cp.xds_port}",
                "--cert-dir",
                str(certs),
                "-o",
                str(bootstrap),
            ],
            check=True,
        )
        client = XdsClient(bootstrap, work / "client.log", xds_credentials=True)
        yield client, backend
    finally:
        if client is not None:
            client.stop()
        cp.stop()
        backend.stop()


def test_istio_mutual_gives_mtls_with_spiffe_identities(
    secure: tuple[XdsClient, GrpcBackend],
) -> None:
    client, backend = secure
    result = client.run(f"xds:///{fqdn('echo')}:{PORT}", 5, wait_for_ready=True, timeout=30)
    assert result["codes"] == {"OK": 5}, (result, client.log_tail())
    # the server required and verified the client's certificate: its SPIFFE id
    assert backend.peers[-5:] == ["spiffe://cluster.local/ns/default/sa/client"] * 5


def test_a_server_with_the_wrong_identity_is_refused(
    secure: tuple[XdsClient, GrpcBackend],
) -> None:
    client, backend = secure
    before = backend.calls
    result = client.run(f"xds:///{fqdn('impostor')}:{PORT}", 2, timeout=10)
    # the server presents .../sa/echo where the registry says .../sa/payments runs
    assert result["codes"] == {"UNAVAILABLE": 2}, (result, client.log_tail())
    assert backend.calls == before
