"""GRPCRoute against the equivalent Istio VirtualService, through one real router Envoy: real
grpcio clients and servers on loopback; a method match with a header goes to v2, the rest of
the service to v1, on both ports alike."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest

from harness.configdir import ConfigDir
from harness.controlplane import ControlPlane, wait_synced
from harness.edges import router_bootstrap
from harness.envoy import EnvoyProcess
from harness.grpcbackend import METHOD, GrpcBackend
from harness.ports import free_port
from harness.wait import wait_until

pytestmark = pytest.mark.envoy

HOST = "rpc.example.com"
LABELS = {"istio": "ingressgateway", "gateway.networking.k8s.io/gateway-name": "edge"}


def _service(name: str, port: int) -> str:
    return f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: default}}
spec:
  hosts: [{name}.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: grpc, protocol: GRPC}}]
  endpoints: [{{address: 127.0.0.1, ports: {{grpc: {port}}}}}]
---
"""


def _config(istio_port: int, api_port: int) -> str:
    return f"""apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: ingress, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers: [{{port: {{number: {istio_port}, name: http, protocol: HTTP}}, hosts: ["*"]}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: rpc, namespace: default}}
spec:
  hosts: [{HOST}]
  gateways: [ingress]
  http:
  - match: [{{uri: {{exact: /shoal.test.Echo/Call}}, headers: {{x-version: {{exact: v2}}}}}}]
    route: [{{destination: {{host: v2.default.svc.cluster.local}}}}]
  - match: [{{uri: {{prefix: /shoal.test.Echo/}}}}]
    route: [{{destination: {{host: v1.default.svc.cluster.local}}}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: edge, namespace: default}}
spec:
  gatewayClassName: shoal
  listeners: [{{name: http, port: {api_port}, protocol: HTTP}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {{name: rpc, namespace: default}}
spec:
  parentRefs: [{{name: edge}}]
  hostnames: [{HOST}]
  rules:
  - matches: [{{method: {{service: shoal.test.Echo}}}}]
    backendRefs: [{{name: v1, port: 80}}]
  - matches:
    - method: {{service: shoal.test.Echo, method: Call}}
      headers: [{{name: x-version, value: v2}}]
    backendRefs: [{{name: v2, port: 80}}]
"""


@pytest.fixture
def grpc_backends() -> Iterator[dict[str, GrpcBackend]]:
    with GrpcBackend("v1") as v1, GrpcBackend("v2") as v2:
        yield {"v1": v1, "v2": v2}


def _call(port: int, metadata: tuple[tuple[str, str], ...] = ()) -> str:
    options = [("grpc.default_authority", HOST)]
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
        call = channel.unary_unary(METHOD)
        try:
            return bytes(call(b"hi", timeout=5, metadata=metadata)).decode()
        except grpc.RpcError as err:
            return str(err.code())  # type: ignore[attr-defined]


def test_grpc_route_answers_like_the_equivalent_virtual_service(
    config_dir: ConfigDir,
    grpc_backends: dict[str, GrpcBackend],
    envoy_factory: Callable[..., EnvoyProcess],
    control_plane_factory: Callable[..., ControlPlane],
) -> None:
    istio_port, api_port = free_port(), free_port()
    services = "".join(_service(n, b.port) for n, b in grpc_backends.items())
    config_dir.write("services.yaml", services)
    config_dir.write("routes.yaml", _config(istio_port, api_port))
    cp = control_plane_factory(config_dir)
    router = envoy_factory(router_bootstrap(cp.xds_port, labels=LABELS), name="edge")
    wait_synced(cp, 1, 30)
    for port in (istio_port, api_port):
        wait_until(
            lambda port=port: _call(port) == "v1",
            30,
            interval=0.2,
            what=f"gRPC through port {port}",
            describe=router.describe,
        )
    v2 = (("x-version", "v2"),)
    # the more specific match (service and method) wins over the earlier service-wide rule
    assert _call(istio_port, v2) == _call(api_port, v2) == "v2"
    assert _call(istio_port) == _call(api_port) == "v1"
