"""One node proxy for three pods (`shoal agent --mode node`), and the same pods with sidecars.

Three network namespaces on a bridge (harness/podnet.py): `frontend` and `other` call
`reviews`, whose app listens on its own 127.0.0.1 only. One real Envoy, run by one node agent
against a secure control plane (a real subprocess, its CA), opens each pod's outbound
listener on 127.0.0.1:15001 inside that pod and reviews' inbound listener on reviews' IP
inside reviews. Traffic between pods is mTLS with each pod's own certificate, so the same
policies give the same answers as sidecars: an AuthorizationPolicy allowing frontend's
principal lets frontend in and refuses other; PeerAuthentication STRICT refuses plaintext.
The same assertions run with an agent inside each pod instead (sidecar mode). The CA gives
the node's token only its pods' identities. Needs root: fails without it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from harness import procs
from harness.configdir import ConfigDir
from harness.controlplane import ControlPlane
from harness.podnet import PodNetwork, available
from harness.ports import free_port
from harness.wait import wait_until
from shoal.agent.certs import new_key_and_csr
from shoal.ca import Identity, TokenIssuer
from shoal.ca.authority import ROOTS
from shoal.ca.client import create_certificate, secure_channel
from shoal.ca.nodetokens import NodeTokens

pytestmark = pytest.mark.envoy
AGENT = [sys.executable, "-m", "shoal.agent", "--log-level", "INFO", "--prometheus-port", "0"]

HOST = "reviews.default.svc.cluster.local"
APP = (
    "import http.server as h\n"
    "class A(h.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(200); self.end_headers(); self.wfile.write(b'reviews')\n"
    "    def log_message(self, *a): pass\n"
    "h.HTTPServer(('127.0.0.1', 8080), A).serve_forever()\n"
)
POLICIES = """apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: default}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-frontend-only, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  rules: [{from: [{source: {principals: [cluster.local/ns/default/sa/frontend]}}]}]
"""


def _service_entry(ip: str) -> str:
    return f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [{HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints:
  - address: {ip}
    ports: {{http: 15006}}
    labels: {{app: reviews, security.istio.io/tlsMode: istio}}
    serviceAccount: reviews
"""


@dataclass
class PodMesh:
    mode: str  # "node": one node agent for every pod; "sidecar": an agent inside each pod
    pods: dict[str, tuple[str, str]]  # name -> (netns, ip)
    cp: ControlPlane
    ca_dir: Path
    agents: list[subprocess.Popen[bytes]]
    logs: list[Path]
    admin: int  # the node Envoy's admin port (host side; sidecars' are inside their pods)

    def curl(self, pod: str, url: str, host: str = HOST) -> str:
        """The HTTP status a request from inside `pod` gets ("000": no HTTP answer)."""
        proc = subprocess.run(
            ["ip", "netns", "exec", self.pods[pod][0], "curl", "-s", "-m", "5",
             "-o", "/dev/null", "-w", "%{http_code}", "-H", f"Host: {host}", url],
            capture_output=True, text=True, timeout=15, check=False,
        )  # fmt: skip
        return proc.stdout.strip() or "000"

    def describe(self) -> str:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.admin}/stats?filter=rds|listener_manager|lds", timeout=5
            ) as resp:
                stats = resp.read().decode()
        except OSError as err:
            stats = f"(no Envoy stats: {err})"
        logs = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in self.logs)
        return f"{self.mode} mode, agent logs:\n{logs}\nEnvoy stats:\n{stats}\n{self.cp.describe()}"


def _start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    procs.register(proc)
    return proc


def _node_agent(
    tmp_path: Path, pods: dict[str, tuple[str, str]], cp: ControlPlane, ca_dir: Path, admin: int
) -> tuple[list[subprocess.Popen[bytes]], list[Path]]:
    listing = [
        {
            "name": name,
            "namespace": "default",
            "ip": ip,
            "netns": f"/var/run/netns/{netns}",
            "service_account": name,
            "labels": {"app": name},
            "outbound_port": 15001,
            **({"inbound_port": 15006, "app_port": 8080} if name == "reviews" else {}),
        }
        for name, (netns, ip) in pods.items()
    ]
    (tmp_path / "pods.json").write_text(json.dumps(listing))
    token = NodeTokens.in_dir(ca_dir).issue("n1", [Identity("default", name) for name in pods])
    token_file = tmp_path / "node.token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    log = tmp_path / "node-agent.log"
    argv = [
        *AGENT, "--mode", "node", "--name", "n1", "--pods", str(tmp_path / "pods.json"),
        "--xds-address", f"127.0.0.1:{cp.xds_port}",
        "--token-file", str(token_file), "--ca-root", str(ca_dir / ROOTS),
        "--admin-port", str(admin), "--health-port", str(free_port()),
    ]  # fmt: skip
    return [_start(argv, log)], [log]


def _sidecar_agents(
    tmp_path: Path, pods: dict[str, tuple[str, str]], xds: str, ca_dir: Path
) -> tuple[list[subprocess.Popen[bytes]], list[Path]]:
    """An agent inside each pod, as `shoal up --netns` runs them (loopback ports here)."""
    tokens = TokenIssuer.in_dir(ca_dir)
    agents, logs = [], []
    for name, (netns, ip) in pods.items():
        token_file = tmp_path / f"{name}.token"
        token_file.write_text(tokens.issue(Identity("default", name)))
        token_file.chmod(0o600)
        ports = ["--inbound-port", "15006", "--app-port", "8080"] if name == "reviews" else []
        argv = [
            "ip", "netns", "exec", netns, *AGENT, "--name", name, "--service-account", name,
            "--labels", f"app={name}", "--ip", ip, "--outbound-port", "15001", *ports,
            "--admin-port", "15000", "--health-port", "15021", "--xds-address", xds,
            "--token-file", str(token_file), "--ca-root", str(ca_dir / ROOTS),
            "--disable-hot-restart",
        ]  # fmt: skip
        logs.append(tmp_path / f"sidecar-{name}.log")
        agents.append(_start(argv, logs[-1]))
    return agents, logs


@pytest.fixture(params=["node", "sidecar"])
def pod_mesh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PodMesh]:
    if not available():
        pytest.fail("the node proxy e2e test needs root and iproute2 (ip netns)")
    mode = str(request.param)
    net = PodNetwork().open()
    started: list[subprocess.Popen[bytes]] = []
    cp: ControlPlane | None = None
    try:
        pods = {name: net.add_pod() for name in ("frontend", "other", "reviews")}
        config = ConfigDir(tmp_path / "config")
        config.write("reviews.yaml", _service_entry(pods["reviews"][1]))
        config.write("policies.yaml", POLICIES)
        ca_dir = tmp_path / "ca"
        # sidecars inside the pods reach the control plane on the bridge's host address
        cp = ControlPlane(
            config.path,
            workdir=tmp_path,
            extra_args=["--secure", "--ca-dir", str(ca_dir), "--xds-also-on", net.host_ip],
        ).start()
        cp.wait_ready()
        app = _start(
            ["ip", "netns", "exec", pods["reviews"][0], sys.executable, "-c", APP],
            tmp_path / "app.log",
        )
        started.append(app)
        admin = free_port()
        if mode == "node":
            agents, logs = _node_agent(tmp_path, pods, cp, ca_dir, admin)
        else:
            agents, logs = _sidecar_agents(tmp_path, pods, f"{net.host_ip}:{cp.xds_port}", ca_dir)
        started.extend(agents)
        yield PodMesh(mode, pods, cp, ca_dir, agents, logs, admin)
    finally:
        for proc in reversed(started):
            procs.terminate(proc, timeout=10)
        if cp is not None:
            cp.stop()
        net.close()


async def _ask_ca(address: str, roots: str, token: str, identity: Identity) -> grpc.StatusCode:
    _, csr = new_key_and_csr(identity)
    async with secure_channel(address, roots) as channel:
        try:
            await create_certificate(channel, csr, 60, token)
        except grpc.aio.AioRpcError as err:
            return err.code()
    return grpc.StatusCode.OK


def test_node_proxy_and_sidecars_give_the_same_answers(pod_mesh: PodMesh) -> None:
    mesh = pod_mesh
    outbound = "http://127.0.0.1:15001/"
    try:
        wait_until(lambda: mesh.curl("frontend", outbound) == "200", 60, what="frontend 200")
    except AssertionError:
        raise AssertionError(mesh.describe()) from None
    # other's request leaves with other's certificate: the policy refuses that principal
    wait_until(lambda: mesh.curl("other", outbound) == "403", 20, what="other 403")
    assert mesh.curl("frontend", outbound) == "200"
    # plaintext straight to reviews' inbound listener: STRICT wants mTLS, no HTTP answer
    reviews_ip = mesh.pods["reviews"][1]
    assert mesh.curl("frontend", f"http://{reviews_ip}:15006/") == "000"
    # the app listens on reviews' own loopback: only its proxy, from inside reviews, gets there
    assert mesh.curl("frontend", f"http://{reviews_ip}:8080/") == "000"
    assert all(a.poll() is None for a in mesh.agents), mesh.describe()
    if mesh.mode == "sidecar":
        return

    # node mode: one Envoy process holds every pod's listeners, inside each pod
    for pod in ("frontend", "other"):
        ss = subprocess.run(
            ["ip", "netns", "exec", mesh.pods[pod][0], "ss", "-Hltnp", "sport", "= :15001"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        assert "envoy" in ss.stdout, ss.stdout + ss.stderr
    # the node's token gets its pods' identities from the CA, no other
    token = (mesh.ca_dir.parent / "node.token").read_text()
    roots = (mesh.ca_dir / ROOTS).read_text()
    address = f"127.0.0.1:{mesh.cp.xds_port}"
    ask = lambda who: asyncio.run(_ask_ca(address, roots, token, who))  # noqa: E731
    assert ask(Identity("default", "reviews")) == grpc.StatusCode.OK
    assert ask(Identity("default", "ratings")) == grpc.StatusCode.PERMISSION_DENIED
    assert ask(Identity("shop", "frontend")) == grpc.StatusCode.PERMISSION_DENIED
