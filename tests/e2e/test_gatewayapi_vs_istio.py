"""Gateway API against the equivalent Istio YAML, through one real router Envoy.

The same config directory holds an Istio Gateway with VirtualServices (port A) and a Gateway
API Gateway with HTTPRoutes written for the same behaviour (port B); the router carries both
gateways' labels. Every request is sent to both ports and must get the same answer: path and
header routing, weights (within a tolerance), header modifiers, redirect, rewrite, a mirror
reaching the mirror backend, a request timeout. A second test does the same for GAMMA: an
HTTPRoute whose parent is a Service configures the sidecars like a VirtualService for it.
"""

from __future__ import annotations

import http.client
import json
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from harness.backend import Backend
from harness.configdir import ConfigDir
from harness.controlplane import ControlPlane, wait_synced
from harness.edges import get, router_bootstrap
from harness.envoy import EnvoyProcess, sidecar_bootstrap, sidecar_node
from harness.faulty import FaultyBackend
from harness.ports import free_port
from harness.wait import wait_until

pytestmark = pytest.mark.envoy

HOST = "shop.example.com"
LABELS = {"istio": "ingressgateway", "gateway.networking.k8s.io/gateway-name": "edge"}


def _service(name: str, port: int) -> str:
    return f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: default}}
spec:
  hosts: [{name}.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http: {port}}}}}]
---
"""


def _dest(name: str) -> str:
    return f"{{host: {name}.default.svc.cluster.local, port: {{number: 80}}}}"


def _istio(port: int) -> str:
    return f"""apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: ingress, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {port}, name: http, protocol: HTTP}}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: shop, namespace: default}}
spec:
  hosts: [{HOST}]
  gateways: [default/ingress]
  http:
  - match: [{{uri: {{exact: /exact}}}}]
    route: [{{destination: {_dest("v1")}}}]
  - match: [{{uri: {{prefix: /items/}}, headers: {{x-version: {{exact: v3}}}}}}]
    route: [{{destination: {_dest("v3")}}}]
  - match: [{{uri: {{exact: /items}}}}, {{uri: {{prefix: /items/}}}}]
    route: [{{destination: {_dest("v2")}}}]
  - match: [{{uri: {{exact: /split}}}}]
    route:
    - {{destination: {_dest("v1")}, weight: 25}}
    - {{destination: {_dest("v2")}, weight: 75}}
  - match: [{{uri: {{exact: /mod}}}}]
    headers:
      request: {{set: {{x-set: "yes"}}, remove: [x-drop]}}
      response: {{add: {{x-resp: r}}}}
    route: [{{destination: {_dest("v1")}}}]
  - match: [{{uri: {{exact: /old}}}}]
    redirect: {{uri: /new, scheme: https, redirectCode: 302}}
  - match: [{{uri: {{exact: /api}}}}]
    rewrite: {{uri: /v2}}
    route: [{{destination: {_dest("v1")}}}]
  - match: [{{uri: {{prefix: /api/}}}}]
    rewrite: {{uri: /v2/}}
    route: [{{destination: {_dest("v1")}}}]
  - match: [{{uri: {{exact: /mirror}}}}]
    mirrors: [{{destination: {_dest("mirror")}}}]
    route: [{{destination: {_dest("v1")}}}]
  - match: [{{uri: {{exact: /slow}}}}]
    timeout: 500ms
    route: [{{destination: {_dest("slow")}}}]
---
"""


def _gateway_api(port: int) -> str:
    return f"""apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: edge, namespace: default}}
spec:
  gatewayClassName: shoal
  listeners:
  - {{name: http, port: {port}, protocol: HTTP}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: shop, namespace: default}}
spec:
  parentRefs: [{{name: edge}}]
  hostnames: [{HOST}]
  rules:
  - matches: [{{path: {{type: Exact, value: /exact}}}}]
    backendRefs: [{{name: v1, port: 80}}]
  - matches: [{{path: {{value: /items}}}}]
    backendRefs: [{{name: v2, port: 80}}]
  - matches: [{{path: {{value: /items}}, headers: [{{name: X-Version, value: v3}}]}}]
    backendRefs: [{{name: v3, port: 80}}]
  - matches: [{{path: {{type: Exact, value: /split}}}}]
    backendRefs: [{{name: v1, port: 80, weight: 1}}, {{name: v2, port: 80, weight: 3}}]
  - matches: [{{path: {{type: Exact, value: /mod}}}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {{set: [{{name: x-set, value: "yes"}}], remove: [x-drop]}}
    - type: ResponseHeaderModifier
      responseHeaderModifier: {{add: [{{name: x-resp, value: r}}]}}
    backendRefs: [{{name: v1, port: 80}}]
  - matches: [{{path: {{type: Exact, value: /old}}}}]
    filters:
    - type: RequestRedirect
      requestRedirect:
        scheme: https
        path: {{type: ReplaceFullPath, replaceFullPath: /new}}
  - matches: [{{path: {{value: /api}}}}]
    filters:
    - type: URLRewrite
      urlRewrite: {{path: {{type: ReplacePrefixMatch, replacePrefixMatch: /v2}}}}
    backendRefs: [{{name: v1, port: 80}}]
  - matches: [{{path: {{type: Exact, value: /mirror}}}}]
    filters:
    - type: RequestMirror
      requestMirror: {{backendRef: {{name: mirror, port: 80}}}}
    backendRefs: [{{name: v1, port: 80}}]
  - matches: [{{path: {{type: Exact, value: /slow}}}}]
    timeouts: {{request: 500ms}}
    backendRefs: [{{name: slow, port: 80}}]
"""


@pytest.fixture
def backends(backend_factory: Callable[[str], Backend]) -> Iterator[dict[str, object]]:
    made: dict[str, object] = {v: backend_factory(v) for v in ("v1", "v2", "v3", "mirror")}
    with FaultyBackend("slow", delay=3.0) as slow:
        made["slow"] = slow
        yield made


_SENT = {"x-set", "x-drop", "x-version"}


def _answer(port: int, path: str, sent: dict[str, str] | None = None) -> tuple[object, ...]:
    """What a client sees, less what differs by nature (dates, ids, the port itself)."""
    status, headers, body = _get_with(port, path, sent or {})
    seen: dict[str, object] = {"status": status, "backend": headers.get("x-backend")}
    if "location" in headers:
        seen["location"] = headers["location"]
    seen["x-resp"] = headers.get("x-resp")
    if status == 200 and headers.get("content-type") == "application/json":
        echo = json.loads(body)
        seen["path"] = echo["path"]
        seen["sent"] = {k: v for k, v in echo["headers"].items() if k in _SENT}
    return tuple(sorted(seen.items()))


def test_gateway_api_answers_like_the_equivalent_istio_yaml(
    config_dir: ConfigDir,
    backends: dict[str, object],
    envoy_factory: Callable[..., EnvoyProcess],
    control_plane_factory: Callable[..., ControlPlane],
) -> None:
    istio_port, api_port = free_port(), free_port()
    services = "".join(_service(name, b.port) for name, b in backends.items())  # type: ignore[attr-defined]
    config_dir.write("services.yaml", services)
    config_dir.write("istio.yaml", _istio(istio_port))
    config_dir.write("gatewayapi.yaml", _gateway_api(api_port))
    cp = control_plane_factory(config_dir)
    router = envoy_factory(router_bootstrap(cp.xds_port, labels=LABELS), name="edge")
    wait_synced(cp, 1, 30)
    for port in (istio_port, api_port):
        wait_until(
            lambda port=port: get(port, HOST, "/exact")[0] == 200,
            30,
            interval=0.2,
            what=f"routes on {port}",
            describe=router.describe,
        )

    cases = ["/exact", "/items", "/items/7", "/itemsx", "/mod", "/old", "/api", "/api/x/y",
             "/mirror", "/nowhere"]  # fmt: skip
    drop = {"x-drop": "1"}
    for path in cases:
        assert _answer(istio_port, path, drop) == _answer(api_port, path, drop), path
    # the answers are the intended ones, not merely equal
    assert dict(_answer(api_port, "/items/7"))["backend"] == "v2"
    assert dict(_answer(api_port, "/itemsx"))["status"] == 404  # PathPrefix is by segment
    assert dict(_answer(api_port, "/old"))["location"] == f"https://{HOST}/new"
    assert dict(_answer(api_port, "/api/x/y"))["path"] == "/v2/x/y"
    assert dict(_answer(api_port, "/api"))["path"] == "/v2"
    mod = dict(_answer(api_port, "/mod", drop))
    assert mod["x-resp"] == "r" and mod["sent"] == {"x-set": "yes"}, mod

    # header match (names are case-insensitive): v3 for x-version: v3, on both
    v3 = {"x-version": "v3"}
    assert _answer(istio_port, "/items/1", v3) == _answer(api_port, "/items/1", v3)
    assert dict(_answer(api_port, "/items/1", v3))["backend"] == "v3"

    # weights 1:3 and 25/75: both near 25 % v1 over 200 requests
    for port in (istio_port, api_port):
        seen = Counter(get(port, HOST, "/split")[1]["x-backend"] for _ in range(200))
        assert 25 <= seen["v1"] <= 75 and seen["v1"] + seen["v2"] == 200, (port, seen)

    # the mirror backend gets a copy of each mirrored request, on both
    mirror = backends["mirror"]
    assert isinstance(mirror, Backend)
    for port in (istio_port, api_port):
        before = mirror.requests
        assert get(port, HOST, "/mirror")[0] == 200
        wait_until(lambda before=before: mirror.requests > before, 10, what="the mirror")

    # a request timeout of 500 ms on a 3 s backend: 504 on both
    for port in (istio_port, api_port):
        assert get(port, HOST, "/slow", timeout=10.0)[0] == 504


def _get_with(port: int, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Host": HOST, **headers})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _mesh_config() -> str:
    return f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: viaistio, namespace: default}}
spec:
  hosts: [viaistio.default.svc.cluster.local]
  http:
  - match: [{{headers: {{x-version: {{exact: v2}}}}}}]
    headers: {{response: {{set: {{x-by: rule}}}}}}
    route: [{{destination: {_dest("v2")}}}]
  - route: [{{destination: {_dest("viaistio")}}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: viagamma, namespace: default}}
spec:
  parentRefs: [{{group: "", kind: Service, name: viagamma, port: 80}}]
  rules:
  - matches: [{{headers: [{{name: x-version, value: v2}}]}}]
    filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier: {{set: [{{name: x-by, value: rule}}]}}
    backendRefs: [{{name: v2, port: 80}}]
  - backendRefs: [{{name: viagamma, port: 80}}]
"""


def test_gamma_route_on_a_service_steers_sidecars_like_a_virtual_service(
    config_dir: ConfigDir,
    backends: dict[str, object],
    envoy_factory: Callable[..., EnvoyProcess],
    control_plane_factory: Callable[..., ControlPlane],
) -> None:
    v1, v2 = backends["v1"], backends["v2"]
    assert isinstance(v1, Backend) and isinstance(v2, Backend)
    services = _service("viaistio", v1.port) + _service("viagamma", v1.port)
    config_dir.write("services.yaml", services + _service("v2", v2.port))
    config_dir.write("routes.yaml", _mesh_config())
    cp = control_plane_factory(config_dir)
    outbound, inbound = free_port(), free_port()
    node_id, metadata = sidecar_node("client", outbound_port=outbound, inbound_port=inbound)
    sidecar = envoy_factory(sidecar_bootstrap(node_id, metadata, cp.xds_port, free_port()))
    wait_synced(cp, 1, 30)

    def answer(service: str, headers: dict[str, str]) -> tuple[int, str | None, str | None]:
        conn = http.client.HTTPConnection("127.0.0.1", outbound, timeout=10)
        try:
            conn.request(
                "GET", "/", headers={"Host": f"{service}.default.svc.cluster.local", **headers}
            )
            resp = conn.getresponse()
            resp.read()
            return resp.status, resp.getheader("x-backend"), resp.getheader("x-by")
        finally:
            conn.close()

    v2_header = {"x-version": "v2"}
    wait_until(
        lambda: answer("viagamma", v2_header)[1] == "v2",
        30,
        interval=0.2,
        what="the GAMMA route in the sidecar",
        describe=sidecar.describe,
    )
    for headers in ({}, v2_header):
        assert answer("viaistio", headers) == answer("viagamma", headers), headers
    assert answer("viagamma", {}) == (200, "v1", None)
    assert answer("viagamma", v2_header) == (200, "v2", "rule")
