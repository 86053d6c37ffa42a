"""Traffic and resilience through `shoal up --secure`, once per mode: loopback sidecars
(apps use HTTP_PROXY) and `--netns` pods (transparent capture, apps know nothing).

One mesh per mode, shared by the module's tests: a client, reviews v1/v2 split 90/10,
ratings with a good and an always-failing replica behind retries, a slow `secret` service
under PeerAuthentication STRICT with a 0.3 s route timeout on one path, an ingress gateway
(a LocalGateway, on the host in both modes) routing to reviews v2; in pods also a TCP
service split by a VirtualService `tcp` route (served at its VIP:port by the callers'
sidecars) and a client whose capture Istio's annotations narrow. Requests are made as the
client app would: through its sidecar's outbound port (loopback), from inside its pod with no
proxy settings (netns). Needs root for the netns mode (fails, never skips, without).
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.configdir import ConfigDir
from harness.edges import get
from harness.netnsup import http_from, left_behind, netns_args, pods_ready, require_root, tcp_from
from harness.ports import free_port
from harness.up import VENV_BIN, ShoalUp, get_via_proxy
from harness.wait import wait_until

pytestmark = pytest.mark.envoy

ECHO = str(Path(__file__).resolve().parents[1] / "harness" / "echoapp.py")


def _workload(name: str, service: str, port: int, labels: str, *, env: str = "{}",
              protocol: str = "HTTP", command: str = "[python, -m, shoal.samples.service]",
              annotations: str = "{}") -> str:  # fmt: skip
    return f"""
apiVersion: shoal.dev/v1alpha1
kind: LocalWorkload
metadata: {{name: {name}, namespace: default, annotations: {annotations}}}
spec:
  service: {service}
  ports: [{{number: {port}, name: {protocol.lower()}, protocol: {protocol}}}]
  labels: {labels}
  serviceAccount: {service}
  env: {env}
  command: {command}
"""


POLICY = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 90}
    - {destination: {host: reviews, subset: v2}, weight: 10}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings]
  http:
  - route: [{destination: {host: ratings}}]
    retries: {attempts: 4, retryOn: 5xx}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: secret, namespace: default}
spec:
  hosts: [secret]
  http:
  - match: [{uri: {prefix: /hurry}}]
    route: [{destination: {host: secret}}]
    timeout: 0.3s
  - route: [{destination: {host: secret}}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: secret, namespace: default}
spec:
  selector: {matchLabels: {app: secret}}
  mtls: {mode: STRICT}
"""

TCP = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo, namespace: default}
spec:
  host: echo
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo]
  tcp:
  - route:
    - {destination: {host: echo, subset: v1}, weight: 0}
    - {destination: {host: echo, subset: v2}, weight: 100}
"""


def _gateway(port: int) -> str:
    return f"""
apiVersion: shoal.dev/v1alpha1
kind: LocalGateway
metadata: {{name: ingress, namespace: default}}
spec:
  labels: {{istio: ingressgateway}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: ingress, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers: [{{port: {{number: {port}, name: http, protocol: HTTP}}, hosts: ["*"]}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: shop, namespace: default}}
spec:
  hosts: [shop.example.com]
  gateways: [ingress]
  http:
  - route: [{{destination: {{host: reviews, subset: v2}}}}]
"""


def _mesh(netns: bool, vips: str, gateway_port: int) -> str:
    parts = [
        _gateway(gateway_port),
        _workload("client", "client", 80, "{app: client, version: v1}"),
        _workload("reviews-v1", "reviews", 9080, "{app: reviews, version: v1}"),
        _workload("reviews-v2", "reviews", 9080, "{app: reviews, version: v2}"),
        _workload("ratings-good", "ratings", 80, "{app: ratings, version: v1}"),
        _workload("ratings-bad", "ratings", 80, "{app: ratings, version: v1}",
                  env="{SHOAL_ERROR_RATE: '1'}"),
        _workload("secret", "secret", 80, "{app: secret, version: v1}",
                  env="{SHOAL_LATENCY: 1s}"),
    ]  # fmt: skip
    if netns:
        echo = f"[python, {ECHO}]"
        parts += [
            _workload("echo-v1", "echo", 7000, "{app: echo, version: v1}", protocol="TCP",
                      command=echo),
            _workload("echo-v2", "echo", 7000, "{app: echo, version: v2}", protocol="TCP",
                      command=echo),
            # capture only service addresses, and never port 7000
            _workload("bypass", "bypass", 80, "{app: bypass, version: v1}",
                      annotations="{traffic.sidecar.istio.io/includeOutboundIPRanges: "
                      f"'{vips}', traffic.sidecar.istio.io/excludeOutboundPorts: '7000'}}"),
        ]  # fmt: skip
        parts.append(TCP)
    return "\n---\n".join([*parts, POLICY])


@dataclass
class Mesh:
    mode: str
    up: ShoalUp
    gateway_port: int
    replicas: dict[str, dict[str, Any]] = field(default_factory=dict)

    def get(self, url: str, count: int = 1, via: str = "client-0") -> list[dict[str, Any]]:
        """`count` GETs of `url` as the app of replica `via` makes them."""
        replica = self.replicas[via]
        if self.mode == "netns":
            return http_from(replica["netns"], url, count)
        out = []
        for _ in range(count):
            started = time.monotonic()
            status, body = get_via_proxy(replica["ports"]["outbound"], url, timeout=10)
            out.append({"status": status, "body": body, "seconds": time.monotonic() - started})
        return out

    def plaintext_to(self, name: str) -> str:
        """GET a replica directly, not through any sidecar (as a process outside the mesh
        would): its answer's replica, or the error."""
        r = self.replicas[name]
        port = r["ports"]["app"] if self.mode == "netns" else r["ports"]["inbound"]
        url = f"http://{r['ip']}:{port}/"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(url, timeout=5) as resp:
                return str(json.loads(resp.read())["replica"])
        except (urllib.error.URLError, OSError, ConnectionError) as err:
            return f"error: {type(err).__name__}"


@pytest.fixture(scope="module", params=["loopback", "netns"])
def mesh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Mesh]:
    mode = request.param
    tmp = tmp_path_factory.mktemp(f"mesh-{mode}")
    state = tmp / "state"
    extra = ["--secure"]
    vips = ""
    if mode == "netns":
        require_root()
        args = netns_args(state)
        vips = args[args.index("--service-cidr") + 1]
        extra += args
    gateway_port = free_port()
    ConfigDir(tmp / "mesh").write("mesh.yaml", _mesh(mode == "netns", vips, gateway_port))
    up = ShoalUp(tmp / "mesh", tmp, name=f"up-{mode}", extra_args=extra)
    try:
        up.start()
        count = 9 if mode == "netns" else 6
        if mode == "netns":
            replicas = pods_ready(up, count, timeout=120)
        else:
            ready = up.wait_ready(count, timeout=120, proxies=count + 1)
            replicas = {r["replica"]: r for r in ready}
        mesh = Mesh(mode, up, gateway_port, replicas)
        # synced is not served: a registration's push may still be in its debounce window
        wait_until(
            lambda: mesh.get("http://reviews:9080/")[0]["status"] == 200,
            60,
            interval=0.5,
            what=f"{mode}: the client reaching reviews",
            describe=up.describe,
        )
        yield mesh
    finally:
        up.stop()
        if mode == "netns":
            subprocess.run(
                [str(VENV_BIN / "shoal"), "up", "--cleanup", "--state-dir", str(state)],
                capture_output=True,
                timeout=60,
                check=False,
            )
            assert left_behind(up.pid, state) == [], up.describe()


def test_weights_split_reviews_90_10(mesh: Mesh) -> None:
    answers = mesh.get("http://reviews:9080/", 200)
    assert all(a["status"] == 200 for a in answers), [a for a in answers if a["status"] != 200]
    versions = Counter(a["body"]["version"] for a in answers)
    # 90/10 (round robin over the two replicas would give 50/50): below 160 for v1 or no v2
    # at all has a probability of about 1e-6 and 1e-9
    assert versions["v1"] >= 160 and versions["v2"] >= 1, versions


def test_retries_hide_the_failing_replica(mesh: Mesh) -> None:
    answers = mesh.get("http://ratings/", 20)
    assert [a["status"] for a in answers] == [200] * 20, answers
    assert {a["body"]["replica"] for a in answers} == {"ratings-good-0"}


def test_route_timeout_answers_504_in_time_and_other_routes_wait(mesh: Mesh) -> None:
    hurried = mesh.get("http://secret/hurry")[0]
    assert hurried["status"] == 504 and hurried["seconds"] < 0.95, hurried
    patient = mesh.get("http://secret/")[0]
    assert patient["status"] == 200 and patient["seconds"] >= 0.95, patient


def test_strict_mtls_serves_the_mesh_and_refuses_plaintext(mesh: Mesh) -> None:
    assert mesh.get("http://secret/")[0]["status"] == 200  # a sidecar's mTLS
    assert mesh.plaintext_to("secret-0").startswith("error"), "STRICT took plaintext"
    # PERMISSIVE (the default) takes it
    assert mesh.plaintext_to("reviews-v1-0") == "reviews-v1-0"


# pods only: a loopback app has no way to reach a TCP service through its sidecar
@pytest.mark.parametrize("mesh", ["netns"], indirect=True)
def test_tcp_service_by_vip_follows_its_tcp_route(mesh: Mesh) -> None:
    lines = tcp_from(mesh.replicas["client-0"]["netns"], "echo", 7000, 6)
    assert lines == [f"echo-v2-0 hello {i}" for i in range(6)], lines


@pytest.mark.parametrize("mesh", ["netns"], indirect=True)
def test_capture_annotations_narrow_what_the_sidecar_sees(mesh: Mesh) -> None:
    # a service address is captured: through the bypass pod's sidecar
    via_vip = mesh.get("http://reviews:9080/", via="bypass-0")[0]
    assert via_vip["status"] == 200 and via_vip["body"]["via"].startswith("outbound bypass"), (
        via_vip
    )
    # a pod address is outside includeOutboundIPRanges: straight to the pod
    target = mesh.replicas["reviews-v1-0"]["ip"]
    direct = mesh.get(f"http://{target}:9080/", via="bypass-0")[0]
    assert direct["status"] == 200 and direct["body"]["via"] == "inbound reviews-v1", direct
    # the same from an unannotated pod goes through its sidecar (passthrough)
    captured = mesh.get(f"http://{target}:9080/")[0]
    assert captured["body"]["via"].startswith("outbound client"), captured
    # excludeOutboundPorts 7000: the VIP is not captured, and nothing else answers it
    lines = tcp_from(mesh.replicas["bypass-0"]["netns"], "echo", 7000, 1, timeout=2)
    assert lines[0].startswith("error"), lines


def test_an_ingress_gateway_on_the_host_reaches_the_pods(mesh: Mesh) -> None:
    """A LocalGateway's Envoy runs on the host (loopback) in both modes; in pods it reaches
    the replicas at their pod addresses, through their inbound capture, with mTLS."""

    def served() -> dict[str, Any] | None:
        status, _, body = get(mesh.gateway_port, "shop.example.com", "/")
        return json.loads(body) if status == 200 else None

    answer = wait_until(served, 30, what="the gateway to answer for shop.example.com")
    assert answer["replica"] == "reviews-v2-0", answer
