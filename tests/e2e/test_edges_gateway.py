"""Ingress gateway: a `router~` Envoy serving Gateway servers with bound VirtualServices.

HTTP to a backend, HTTPS terminated with a self-signed certificate read from
`<config-dir>/secrets/<credentialName>/`, and a router that holds gateway config only.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

import pytest

from harness.configdir import ConfigDir
from harness.controlplane import wait_synced
from harness.edges import get, router_bootstrap, self_signed
from harness.envoy import EnvoyProcess
from harness.mesh import HOST, Mesh
from harness.ports import free_port
from harness.wait import wait_until

pytestmark = pytest.mark.envoy


def _gateway(servers: str) -> str:
    return f"""apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: ingress, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
{servers}"""


def _bound_vs(host: str) -> str:
    return f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: shop, namespace: default}}
spec:
  hosts: ["{host}"]
  gateways: [default/ingress]
  http:
  - match: [{{uri: {{prefix: /}}}}]
    route:
    - destination: {{host: {HOST}, subset: v2, port: {{number: 80}}}}
"""


def test_http_through_the_gateway_to_a_backend_and_router_gets_only_gateway_config(
    mesh: Mesh, envoy_factory: Callable[..., EnvoyProcess], config_dir: ConfigDir
) -> None:
    port = free_port()
    config_dir.write(
        "gateway.yaml",
        _gateway(f"""  - port: {{number: {port}, name: http, protocol: HTTP}}
    hosts: ["*"]
"""),
    )
    cp = mesh.start()
    router = envoy_factory(router_bootstrap(cp.xds_port), name="ingress")
    sidecar = mesh.sidecar()
    wait_synced(cp, 2, 10)

    # baseline: the Gateway listens, but no VirtualService is bound to it yet
    router.wait_for(lambda e: f"127.0.0.1_{port}" in e.listeners(), what="gateway listener")
    assert get(port, "shop.example.com")[0] == 404

    config_dir.write("shop-vs.yaml", _bound_vs("shop.example.com"))
    wait_until(
        lambda: get(port, "shop.example.com")[0] == 200,
        10,
        interval=0.1,
        what="the bound VirtualService to route",
        describe=router.describe,
    )
    status, headers, _ = get(port, "shop.example.com:1234", "/books")
    assert status == 200 and headers["x-backend"] == "v2", headers
    assert "gateway ingress" in headers.get("via", "")
    assert get(port, "other.example.com")[0] == 404  # not a host of the bound VS

    # the router holds gateway config only; the sidecar no gateway listener
    assert router.listeners() == [f"127.0.0.1_{port}"]
    assert f"127.0.0.1_{port}" not in sidecar.envoy.listeners()
    # a gateway-only VirtualService does not change sidecars' routing
    assert get(sidecar.outbound_port, HOST)[1]["x-backend"] == "v1"


def test_https_terminated_with_a_file_backed_credential(
    mesh: Mesh, envoy_factory: Callable[..., EnvoyProcess], config_dir: ConfigDir
) -> None:
    port = free_port()
    host = "shop.example.com"
    config_dir.write(
        "gateway.yaml",
        _gateway(f"""  - port: {{number: {port}, name: https, protocol: HTTPS}}
    hosts: ["{host}"]
    tls: {{mode: SIMPLE, credentialName: shop-cert}}
"""),
    )
    config_dir.write("shop-vs.yaml", _bound_vs(host))
    cp = mesh.start()
    router = envoy_factory(router_bootstrap(cp.xds_port), name="ingress", wait="admin")

    # baseline: the credential does not exist yet, so nothing listens on the port
    with pytest.raises(OSError):
        get(port, host, tls=ssl.create_default_context())

    cert_pem, _ = self_signed(config_dir.path / "secrets" / "shop-cert", host)
    context = ssl.create_default_context(cadata=cert_pem)
    wait_until(
        lambda: get(port, host, tls=context)[0] == 200,
        10,
        interval=0.2,
        what="HTTPS through the gateway",
        describe=router.describe,
    )
    status, headers, _ = get(port, host, "/secure", tls=context)
    assert status == 200 and headers["x-backend"] == "v2"
    # the certificate is the one from the secret directory: a client trusting nothing fails
    with pytest.raises(ssl.SSLError):
        get(port, host, tls=ssl.create_default_context())


def _tls_client(cert_pem: str, lowest: ssl.TLSVersion, highest: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=cert_pem)
    context.minimum_version, context.maximum_version = lowest, highest
    return context


def test_gateway_tls_protocol_versions_bound_what_clients_may_speak(
    mesh: Mesh, envoy_factory: Callable[..., EnvoyProcess], config_dir: ConfigDir
) -> None:
    port, host = free_port(), "shop.example.com"
    cert_pem, _ = self_signed(config_dir.path / "secrets" / "shop-cert", host)

    def gateway(versions: str) -> str:
        return _gateway(f"""  - port: {{number: {port}, name: https, protocol: HTTPS}}
    hosts: ["{host}"]
    tls: {{mode: SIMPLE, credentialName: shop-cert{versions}}}
""")

    config_dir.write("gateway.yaml", gateway(""))
    config_dir.write("shop-vs.yaml", _bound_vs(host))
    cp = mesh.start()
    router = envoy_factory(router_bootstrap(cp.xds_port), name="ingress", wait="admin")
    tls12 = _tls_client(cert_pem, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)
    tls13 = _tls_client(cert_pem, ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3)
    # baseline (Envoy's default, TLS 1.2 to 1.3): both versions are served
    wait_until(lambda: get(port, host, tls=tls13)[0] == 200, 10, interval=0.2, what="TLS 1.3")
    assert get(port, host, tls=tls12)[0] == 200

    config_dir.write("gateway.yaml", gateway(", maxProtocolVersion: TLSV1_2"))

    def refused(context: ssl.SSLContext) -> bool:
        try:
            get(port, host, tls=context)
        except (ssl.SSLError, ConnectionError):
            return True
        return False

    wait_until(lambda: refused(tls13), 10, interval=0.2, what="TLS 1.3 to be refused")
    assert get(port, host, tls=tls12)[0] == 200

    config_dir.write("gateway.yaml", gateway(", minProtocolVersion: TLSV1_3"))
    wait_until(lambda: refused(tls12), 10, interval=0.2, what="TLS 1.2 to be refused")
    assert get(port, host, tls=tls13)[0] == 200
    assert router.listeners() == [f"127.0.0.1_{port}"]


def test_https_redirect_on_an_http_server_answers_301_to_https(
    mesh: Mesh, envoy_factory: Callable[..., EnvoyProcess], config_dir: ConfigDir
) -> None:
    port, host = free_port(), "shop.example.com"

    def gateway(tls: str) -> str:
        return _gateway(f"""  - port: {{number: {port}, name: http, protocol: HTTP}}
    hosts: ["{host}"]{tls}
""")

    config_dir.write("gateway.yaml", gateway(""))
    config_dir.write("shop-vs.yaml", _bound_vs(host))
    cp = mesh.start()
    router = envoy_factory(router_bootstrap(cp.xds_port), name="ingress")
    # baseline: plain HTTP is served
    wait_until(lambda: get(port, host)[0] == 200, 10, interval=0.2, what="HTTP through the gateway")

    config_dir.write("gateway.yaml", gateway("\n    tls: {httpsRedirect: true}"))
    wait_until(
        lambda: get(port, host)[0] == 301,
        10,
        interval=0.2,
        what="a redirect",
        describe=router.describe,
    )
    status, headers, _ = get(port, host, "/books?page=2")
    assert status == 301 and headers["location"] == f"https://{host}/books?page=2", headers
