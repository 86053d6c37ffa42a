"""Kubernetes objects in a config directory, through real Envoys: a `v1 Service` (in a folder
whose `namespace` file places it in `shop`) defines `books.shop.svc.cluster.local` with the
WorkloadEntry its selector matches, and a sidecar reaches that backend by the Service's name;
a `kubernetes.io/tls` Secret serves a Gateway's `credentialName` like `secrets/NAME/` does.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.configdir import ConfigDir
from harness.edges import get, router_bootstrap, self_signed
from harness.envoy import EnvoyProcess
from harness.mesh import HOST, Mesh
from harness.ports import free_port
from harness.wait import wait_until

pytestmark = pytest.mark.envoy


def test_a_service_in_a_namespace_folder_routes_to_the_workload_entry_it_selects(
    mesh: Mesh, config_dir: ConfigDir
) -> None:
    v3 = mesh.backends["v3"]
    (config_dir.path / "shop").mkdir()
    config_dir.write("shop/namespace", "shop\n")
    mesh.start()
    sidecar = mesh.sidecar()
    mesh.synced()
    books = "books.shop.svc.cluster.local"
    # baseline: no such service yet, so the sidecar has no route for the name
    assert get(sidecar.outbound_port, books)[0] != 200
    # as Istio's samples have it: the Service, its Deployment (a note) and no namespace
    config_dir.write(
        "shop/books.yaml",
        f"""apiVersion: v1
kind: Service
metadata: {{name: books, labels: {{app: books}}}}
spec:
  ports: [{{name: http-web, port: 9080, targetPort: 9080}}]
  selector: {{app: books}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: books-v1}}
spec: {{selector: {{matchLabels: {{app: books}}}}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: books-vm}}
spec: {{address: 127.0.0.1, labels: {{app: books}}, ports: {{http-web: {v3.port}}}}}
""",
    )
    mesh.wait_routes(sidecar, {"v3"}, host=books)
    mesh.wait_routes(sidecar, {"v1"}, host=HOST)  # the rest of the mesh is unchanged


def _secret(name: str, cert: str, key: str) -> str:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    return f"""apiVersion: v1
kind: Secret
type: kubernetes.io/tls
metadata: {{name: {name}, namespace: istio-system}}
data:
  tls.crt: {b64(cert)}
  tls.key: {b64(key)}
"""


def test_a_tls_secret_serves_the_gateway_credential(
    mesh: Mesh,
    envoy_factory: Callable[..., EnvoyProcess],
    config_dir: ConfigDir,
    tmp_path: Path,
) -> None:
    port, host = free_port(), "shop.example.com"
    config_dir.write(
        "gateway.yaml",
        f"""apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: ingress}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {port}, name: https, protocol: HTTPS}}
    hosts: ["{host}"]
    tls: {{mode: SIMPLE, credentialName: shop-cert}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: shop}}
spec:
  hosts: ["{host}"]
  gateways: [ingress]
  http:
  - route: [{{destination: {{host: {HOST}, subset: v2, port: {{number: 80}}}}}}]
""",
    )
    cp = mesh.start()
    router = envoy_factory(router_bootstrap(cp.xds_port), name="ingress", wait="admin")
    # baseline: no credential, so nothing listens on the port
    with pytest.raises(OSError):
        get(port, host, tls=ssl.create_default_context())

    cert, key = self_signed(tmp_path / "made", host)
    config_dir.write("shop-cert.yaml", _secret("shop-cert", cert, key))
    context = ssl.create_default_context(cadata=cert)
    wait_until(
        lambda: get(port, host, tls=context)[0] == 200,
        10,
        interval=0.2,
        what="HTTPS through the gateway with the Secret's certificate",
        describe=router.describe,
    )
    status, headers, _ = get(port, host, "/secure", tls=context)
    assert status == 200 and headers["x-backend"] == "v2"
    with pytest.raises(ssl.SSLError):  # the Secret's own certificate: trusting nothing fails
        get(port, host, tls=ssl.create_default_context())
