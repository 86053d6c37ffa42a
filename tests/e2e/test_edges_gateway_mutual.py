"""Gateway servers that require client certificates, through a real `router~` Envoy: `MUTUAL`
(the credential's `ca.crt` names the client CAs, as istio.io's mutual TLS ingress task) and
`ISTIO_MUTUAL` (the gateway's mesh certificate from SDS, clients with mesh certificates, as
Istio's egress gateway TLS origination task). A client without a certificate, or with one
from another CA, gets no answer; one with the right certificate gets the backend.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.configdir import ConfigDir
from harness.edges import get, router_bootstrap, self_signed
from harness.envoy import EnvoyProcess
from harness.mesh import HOST, Mesh
from harness.ports import free_port
from harness.sds import TestCA, TestSdsServer, spiffe
from harness.wait import wait_until

pytestmark = pytest.mark.envoy
SHOP = "shop.example.com"


def _config(port: int, tls: str) -> str:
    return f"""apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: ingress, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {port}, name: https, protocol: HTTPS}}
    hosts: ["{SHOP}"]
    tls: {tls}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: shop, namespace: default}}
spec:
  hosts: ["{SHOP}"]
  gateways: [default/ingress]
  http:
  - route:
    - destination: {{host: {HOST}, subset: v2, port: {{number: 80}}}}
"""


def _client(trust: str, tmp: Path, cert: tuple[str, str] | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=trust)
    context.check_hostname = False  # mesh certificates name a SPIFFE id, not a host
    if cert is not None:
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / "c.pem").write_text(cert[0])
        (tmp / "k.pem").write_text(cert[1])
        context.load_cert_chain(tmp / "c.pem", tmp / "k.pem")
    return context


def _refused(port: int, context: ssl.SSLContext) -> bool:
    # TLS 1.3 reports a refused client certificate on the first read, not in the handshake
    try:
        get(port, SHOP, tls=context)
    except (ssl.SSLError, ConnectionError, OSError):
        return True
    return False


def test_mutual_requires_a_client_certificate_from_the_credentials_ca(
    mesh: Mesh,
    envoy_factory: Callable[..., EnvoyProcess],
    config_dir: ConfigDir,
    tmp_path: Path,
) -> None:
    port = free_port()
    secret = config_dir.path / "secrets" / "httpbin-credential"
    server_pem, _ = self_signed(secret, SHOP)
    client_ca, other_ca = TestCA(), TestCA()
    config_dir.write("gw.yaml", _config(port, "{mode: MUTUAL, credentialName: httpbin-credential}"))
    cp = mesh.start()
    router = envoy_factory(router_bootstrap(cp.xds_port), name="ingress", wait="admin")
    good = _client(server_pem, tmp_path / "good", client_ca.issue(spiffe("curl")))

    # baseline: without ca.crt the MUTUAL server is not served
    with pytest.raises(OSError):
        get(port, SHOP, tls=good)
    (secret / "ca.crt").write_text(client_ca.root_pem)
    wait_until(lambda: get(port, SHOP, tls=good)[0] == 200, 15, interval=0.2,
               what="MUTUAL with a client certificate", describe=router.describe)  # fmt: skip
    assert get(port, SHOP, "/x", tls=good)[1]["x-backend"] == "v2"
    assert _refused(port, _client(server_pem, tmp_path / "none", None))
    assert _refused(port, _client(server_pem, tmp_path / "other", other_ca.issue(spiffe("curl"))))


def _secure_router(xds_port: int, sds_port: int) -> dict[str, Any]:
    boot = router_bootstrap(xds_port)
    boot["node"]["metadata"]["SECURE"] = "true"
    xds = boot["static_resources"]["clusters"][0]
    address = {"socket_address": {"address": "127.0.0.1", "port_value": sds_port}}
    sds = {**xds, "name": "sds-grpc", "load_assignment": {
        "cluster_name": "sds-grpc",
        "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address}}]}],
    }}  # fmt: skip
    boot["static_resources"]["clusters"].append(sds)
    return boot


def test_istio_mutual_serves_the_mesh_certificate_and_requires_one(
    mesh: Mesh,
    envoy_factory: Callable[..., EnvoyProcess],
    config_dir: ConfigDir,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    port = free_port()
    ca = TestCA()
    sds = TestSdsServer(ca, spiffe("ingress")).start()
    request.addfinalizer(sds.stop)
    config_dir.write("gw.yaml", _config(port, "{mode: ISTIO_MUTUAL}"))
    mesh.start()
    assert mesh.cp is not None
    # a router without a mesh certificate (no SDS) cannot serve ISTIO_MUTUAL
    plain_port = free_port()
    config_dir.write("gw2.yaml", _config(plain_port, "{mode: ISTIO_MUTUAL}").replace(
        "ingressgateway", "plain").replace("name: ingress", "name: plain").replace(
        "default/ingress", "default/plain").replace("name: shop", "name: shop2"))  # fmt: skip
    envoy_factory(router_bootstrap(mesh.cp.xds_port, "plain", {"istio": "plain"}), name="plain")
    router = envoy_factory(_secure_router(mesh.cp.xds_port, sds.port), name="ingress")
    mesh_client = _client(ca.root_pem, tmp_path / "mesh", ca.issue(spiffe("curl")))

    wait_until(lambda: get(port, SHOP, tls=mesh_client)[0] == 200, 15, interval=0.2,
               what="ISTIO_MUTUAL with a mesh certificate", describe=router.describe)  # fmt: skip
    assert get(port, SHOP, "/y", tls=mesh_client)[1]["x-backend"] == "v2"
    assert _refused(port, _client(ca.root_pem, tmp_path / "none", None))
    other = TestCA()
    assert _refused(port, _client(ca.root_pem, tmp_path / "other", other.issue(spiffe("curl"))))
    with pytest.raises(OSError):  # nothing listens: no certificate to serve
        get(plain_port, SHOP, tls=mesh_client)
