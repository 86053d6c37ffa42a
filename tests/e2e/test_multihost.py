"""Several hosts (issue 15 section 2): workloads on other hosts join with `shoal agent` alone.

Hosts are network namespaces with their own addresses on a bridge (shoal.runtime.podnet);
the secure control plane listens on the bridge's address. On three hosts a sample app and
`shoal agent --workload-group G --token-file T` run -- no WorkloadEntry is written by
anyone: the control plane makes one per host when its xDS stream connects (Istio's
auto-registration), from the group's template (labels, ports, serviceAccount), and traffic
from the frontend host to `reviews` reaches both reviews hosts over mTLS.

Then: the group's httpGet probe (run by each agent) fails on one host -> its entry stops
being served; heals -> back. A token of another service account cannot join the group.
Finally, under load, one reviews host's link goes down (`ip link set ... down`): the caller's
retries (perTryTimeout) absorb every request that was on its way there (no request fails),
outlier detection ejects the host so no more requests go to it, and once its xDS stream is
found dead (server keepalive) and the grace period has passed, its WorkloadEntry is removed
from the mesh. Needs root (CI runs as root): without it the test fails, saying so.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import struct_pb2

from harness import procs
from harness.adminhttp import get_json, request
from harness.hosts import Load, http_get, in_netns, start_in
from harness.ports import free_port
from harness.wait import wait_until
from shoal.ca.identity import CONTROL_PLANE_DNS
from shoal.runtime.podnet import Pod, PodNetwork

pytestmark = pytest.mark.envoy

HOST = "reviews.default.svc.cluster.local"
APP, INBOUND, OUTBOUND, ADMIN, HEALTH = 9080, 15106, 15101, 15000, 15021
GRACE_S = 2.0

CONFIG = f"""\
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {{name: reviews, namespace: default}}
spec:
  metadata:
    labels: {{app: reviews}}
    annotations: {{team: books}}
  template:
    ports: {{http: {APP}}}
    labels: {{version: v1}}
    serviceAccount: reviews
    weight: 1
  probe:
    initialDelaySeconds: 0
    periodSeconds: 1
    timeoutSeconds: 1
    successThreshold: 1
    failureThreshold: 1
    httpGet: {{path: /, port: {APP}, host: 127.0.0.1, scheme: HTTP,
               httpHeaders: [{{name: x-probe, value: shoal}}]}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {{name: frontend, namespace: default}}
spec:
  metadata: {{labels: {{app: frontend}}}}
  template: {{serviceAccount: frontend}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [{HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  workloadSelector: {{labels: {{app: reviews}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews, namespace: default}}
spec:
  host: {HOST}
  trafficPolicy:
    connectionPool: {{tcp: {{connectTimeout: 0.5s}}}}
    outlierDetection:
      consecutiveGatewayErrors: 1
      consecutive5xxErrors: 1
      interval: 0.5s
      baseEjectionTime: 60s
      maxEjectionPercent: 100
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [{HOST}]
  http:
  - route: [{{destination: {{host: {HOST}}}}}]
    timeout: 10s
    retries: {{attempts: 5, perTryTimeout: 0.5s,
               retryOn: "connect-failure,reset,gateway-error,refused-stream"}}
"""


def _shoal() -> list[str]:
    script = Path(sys.executable).with_name("shoal")
    return [str(script)] if script.exists() else [sys.executable, "-m", "shoal.cli.main"]


@dataclass
class Machine:
    pod: Pod
    agent: subprocess.Popen[bytes]
    app: subprocess.Popen[bytes] | None
    log: Path

    def admin(self, path: str) -> Any:
        status, body = in_netns(self.pod.netns, lambda: http_get(ADMIN, path))
        assert status == 200, (path, status, body[:300])
        return json.loads(body) if path.endswith("json") else body.decode()

    def stat(self, name: str) -> int:
        text = self.admin(f"/stats?filter=^{name}$")
        for line in text.splitlines():
            key, _, value = line.partition(": ")
            if key == name and value.strip().isdigit():
                return int(value)
        return 0


class Mesh:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.net = PodNetwork(
            tmp / "podnet",
            subnet=f"10.{random.randrange(200, 250)}.{random.randrange(1, 250)}",
            tag=f"mh{os.getpid() % 10000}",
        )
        self.procs: list[subprocess.Popen[bytes]] = []
        self.machines: dict[str, Machine] = {}
        self.cp: subprocess.Popen[bytes] | None = None
        self.ca_dir = tmp / "ca"
        self.config = tmp / "config"
        self.xds_port, self.admin_port = free_port(), free_port()

    @property
    def admin_url(self) -> str:
        return f"http://{self.net.host_ip}:{self.admin_port}"

    def start_control_plane(self) -> None:
        self.config.mkdir()
        (self.config / "mesh.yaml").write_text(CONFIG)
        log = (self.tmp / "cp.log").open("wb")
        argv = [
            *_shoal(),
            "control-plane",
            "--config-dir",
            str(self.config),
            "--host",
            self.net.host_ip,
            "--xds-port",
            str(self.xds_port),
            "--admin-port",
            str(self.admin_port),
            "--debounce-ms",
            "20",
            "--secure",
            "--ca-dir",
            str(self.ca_dir),
            "--workload-entry-grace-period",
            str(GRACE_S),
            "--xds-keepalive",
            "1",
            "--xds-keepalive-timeout",
            "2",
        ]
        self.cp = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        procs.register(self.cp)
        wait_until(
            lambda: request("GET", f"{self.admin_url}/ready", timeout=2)[0] == 200,
            30,
            interval=0.2,
            what="the control plane to be ready",
            describe=lambda: self.tail(self.tmp / "cp.log"),
        )

    def token(self, service_account: str) -> Path:
        path = self.tmp / f"{service_account}.token"
        subprocess.run(
            [
                *_shoal(),
                "ca",
                "issue-token",
                "--ca-dir",
                str(self.ca_dir),
                "--service-account",
                service_account,
                "-o",
                str(path),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        return path

    def join(self, name: str, group: str, *, app: bool) -> Machine:
        pod = self.net.add_pod(name)
        log = self.tmp / f"{name}.log"
        app_proc = None
        if app:
            app_proc = start_in(
                pod.netns,
                [
                    sys.executable,
                    "-m",
                    "shoal.samples.service",
                    "--name",
                    "reviews",
                    "--replica",
                    name,
                    "--port",
                    str(APP),
                ],
                self.tmp / f"{name}-app.log",
            )
        argv = [
            sys.executable,
            "-m",
            "shoal.agent",
            "--workload-group",
            group,
            "--namespace",
            "default",
            "--ip",
            pod.ip,
            "--xds-address",
            f"{self.net.host_ip}:{self.xds_port}",
            "--token-file",
            str(self.token(group)),
            "--ca-root",
            str(self.ca_dir / "trusted-roots.pem"),
            "--outbound-port",
            str(OUTBOUND),
            "--admin-port",
            str(ADMIN),
            "--health-port",
            str(HEALTH),
            "--prometheus-port",
            "0",
            "--disable-hot-restart",
            "--drain-seconds",
            "0.2",
        ]
        if app:
            argv += ["--inbound-port", str(INBOUND), "--app-port", str(APP)]
        agent = start_in(pod.netns, argv, log)
        machine = Machine(pod, agent, app_proc, log)
        self.machines[name] = machine
        return machine

    def entries(self) -> dict[str, dict[str, Any]]:
        view = get_json(f"{self.admin_url}/debug/autoregister")
        return {e["address"]: e for e in view["entries"]}

    @staticmethod
    def tail(path: Path, n: int = 3000) -> str:
        try:
            return path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def describe(self) -> str:
        parts = [f"cp: {self.tail(self.tmp / 'cp.log')}"]
        parts += [f"{n}: {self.tail(m.log, 1500)}" for n, m in self.machines.items()]
        return "\n".join(parts)

    def close(self) -> None:
        for machine in self.machines.values():
            for proc in (machine.agent, machine.app):
                if proc is not None:
                    procs.terminate(proc, timeout=5)
        if self.cp is not None:
            procs.terminate(self.cp, timeout=5)
        self.net.close()


@pytest.fixture
def mesh(tmp_path: Path) -> Iterator[Mesh]:
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.fail("the multi-host test needs root and iproute2 (network namespaces)")
    m = Mesh(tmp_path)
    try:
        m.net.open()
        yield m
    finally:
        m.close()
        left = subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, check=True
        ).stdout
        assert f"shoal-{m.net.tag}-" not in left, left
        links = subprocess.run(
            ["ip", "-o", "link"], capture_output=True, text=True, check=True
        ).stdout
        assert f"shv{m.net.tag}" not in links and f"shb{m.net.tag}" not in links


def _cluster_hosts(machine: Machine) -> dict[str, dict[str, Any]]:
    """The caller's Envoy's view of the reviews cluster: address -> host status."""
    data = machine.admin("/clusters?format=json")
    out: dict[str, dict[str, Any]] = {}
    for cluster in data.get("cluster_statuses", []):
        if HOST not in cluster["name"] or "|80|" not in cluster["name"]:
            continue
        for h in cluster.get("host_statuses", []):
            addr = h["address"]["socket_address"]["address"]
            stats = {s["name"]: int(s.get("value", 0)) for s in h.get("stats", [])}
            out[addr] = {"health": h.get("health_status", {}), **stats}
    return out


def _refused_join(mesh: Mesh) -> grpc.RpcError:
    """An xDS stream naming group reviews with a frontend token: the answer's error."""
    roots = (mesh.ca_dir / "trusted-roots.pem").read_bytes()
    token = mesh.token("frontend").read_text().strip()
    channel = grpc.secure_channel(
        f"{mesh.net.host_ip}:{mesh.xds_port}",
        grpc.ssl_channel_credentials(root_certificates=roots),
        options=[("grpc.ssl_target_name_override", CONTROL_PLANE_DNS)],
    )
    ads = channel.stream_stream(
        "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
        request_serializer=discovery_pb2.DiscoveryRequest.SerializeToString,
        response_deserializer=discovery_pb2.DiscoveryResponse.FromString,
    )
    req = discovery_pb2.DiscoveryRequest(
        type_url="type.googleapis.com/envoy.config.cluster.v3.Cluster"
    )
    req.node.id = "sidecar~10.0.0.99~intruder.default~default.svc.cluster.local"
    meta = struct_pb2.Struct()
    meta.update(
        {
            "NAMESPACE": "default",
            "SERVICE_ACCOUNT": "frontend",
            "AUTO_REGISTER_GROUP": "reviews",
            "INTERCEPTION_MODE": "NONE",
            "OUTBOUND_PORT": "15001",
        }
    )
    req.node.metadata.CopyFrom(meta)
    try:
        for _ in ads(iter([req]), metadata=(("authorization", f"Bearer {token}"),), timeout=10):
            break
    except grpc.RpcError as err:
        return err
    finally:
        channel.close()
    raise AssertionError("a frontend token joined WorkloadGroup reviews")


def test_workloads_on_three_hosts_join_by_auto_registration_and_a_dead_host_is_dropped(
    mesh: Mesh,
) -> None:
    mesh.start_control_plane()
    r1 = mesh.join("reviews-1", "reviews", app=True)
    r2 = mesh.join("reviews-2", "reviews", app=True)
    front = mesh.join("frontend-1", "frontend", app=False)
    ips = {r1.pod.ip, r2.pod.ip, front.pod.ip}

    # -- joined: one WorkloadEntry per host, made from the group, served once probed ready
    entries = wait_until(
        lambda: (
            (e := mesh.entries()) and ips <= set(e) and all(x["serving"] for x in e.values()) and e
        ),
        60,
        interval=0.3,
        what="three auto-registered, serving entries",
        describe=mesh.describe,
    )
    e1 = entries[r1.pod.ip]
    assert e1["group"] == "reviews" and e1["service_account"] == "reviews" and e1["connected"]
    assert e1["probe"] and e1["healthy"] is True and "200" in e1["health_message"]
    assert entries[front.pod.ip]["probe"] is False
    name1 = f"reviews-{r1.pod.ip.replace('.', '-')}"
    syncz = get_json(f"{mesh.admin_url}/debug/syncz")
    assert {s.get("workload_entry") for s in syncz} >= {f"default/{name1}"}, syncz
    status = subprocess.run(
        [*_shoal(), "proxy-status", "--control-plane", mesh.admin_url],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert f"WorkloadEntry default/{name1}, serving" in status, status

    def answers() -> dict[str, int]:
        got: dict[str, int] = {}
        for _ in range(12):
            status, body = in_netns(front.pod.netns, lambda: http_get(OUTBOUND, host=HOST))
            if status == 200:
                replica = json.loads(body)["replica"]
                got[replica] = got.get(replica, 0) + 1
        return got

    wait_until(
        lambda: set(answers()) == {"reviews-1", "reviews-2"},
        30,
        interval=0.3,
        what="frontend's calls to reach both reviews hosts",
        describe=mesh.describe,
    )
    # across hosts with mTLS: each reviews sidecar's inbound chain counted TLS handshakes
    for r in (r1, r2):
        assert r.stat(f"listener.{r.pod.ip}_{INBOUND}.ssl.handshake") >= 1
    # the entry is an ordinary WorkloadEntry: the caller's endpoint has its labels' tls mode
    hosts = _cluster_hosts(front)
    assert {r1.pod.ip, r2.pod.ip} == set(hosts), hosts

    # -- a token of another service account cannot join the group
    err = _refused_join(mesh)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED, err
    assert "service account reviews" in (err.details() or ""), err.details()
    assert "10.0.0.99" not in mesh.entries()

    # -- the probe fails on reviews-1 (its app answers 503): its entry is no longer served
    def app_admin(path: str, body: bytes = b"") -> int:
        def post() -> int:
            import http.client

            conn = http.client.HTTPConnection("127.0.0.1", APP, timeout=5)
            try:
                conn.request("POST", path, body=body)
                resp = conn.getresponse()
                resp.read()
                return resp.status
            finally:
                conn.close()

        return in_netns(r1.pod.netns, post)

    assert app_admin("/admin/blowup") == 200
    wait_until(
        lambda: mesh.entries()[r1.pod.ip]["serving"] is False,
        20,
        interval=0.2,
        what="reviews-1 to stop being served while its probe fails",
    )
    assert mesh.entries()[r1.pod.ip]["healthy"] is False
    wait_until(
        lambda: set(_cluster_hosts(front)) == {r2.pod.ip},
        20,
        interval=0.2,
        what="frontend's endpoints to lose reviews-1",
    )
    assert app_admin("/admin/knobs", b'{"error_rate": 0}') == 200
    wait_until(
        lambda: mesh.entries()[r1.pod.ip]["serving"],
        20,
        interval=0.2,
        what="reviews-1 back once its probe passes",
        describe=mesh.describe,
    )
    wait_until(
        lambda: set(_cluster_hosts(front)) == {r1.pod.ip, r2.pod.ip},
        20,
        interval=0.2,
        what="frontend's endpoints to have reviews-1 again",
    )

    # -- under load, reviews-2's host loses its network
    load = Load(front.pod.netns, OUTBOUND, HOST).start()
    try:
        wait_until(
            lambda: len(Load.summary(load.since(time.monotonic() - 2))["by_replica"]) == 2,
            20,
            interval=0.2,
            what="load reaching both hosts",
        )
        down_at = time.monotonic()
        subprocess.run(["ip", "link", "set", r2.pod.host_link, "down"], check=True, timeout=10)

        def ejected_or_gone() -> bool:
            host = _cluster_hosts(front).get(r2.pod.ip)
            return host is None or bool(host["health"].get("failed_outlier_check"))

        wait_until(
            ejected_or_gone,
            15,
            interval=0.1,
            what="the caller to eject reviews-2",
            describe=lambda: str(_cluster_hosts(front)),
        )
        ejected_after = time.monotonic() - down_at
        # from now on nothing is sent to reviews-2: its request count stays where it is
        before = _cluster_hosts(front).get(r2.pod.ip)
        time.sleep(1.5)
        after = _cluster_hosts(front).get(r2.pod.ip)
        # (gone from the endpoints meanwhile is fine too: then nothing can be sent to it)
        if before is not None and after is not None:
            assert after["rq_total"] == before["rq_total"], (
                f"requests still sent to the dead host: {before} -> {after}"
            )
        # the control plane finds the stream dead (keepalive) and drops the entry after grace
        wait_until(
            lambda: r2.pod.ip not in mesh.entries(),
            15 + GRACE_S,
            interval=0.2,
            what="reviews-2's entry to be removed",
            describe=mesh.describe,
        )
        removed_after = time.monotonic() - down_at
        wait_until(
            lambda: r2.pod.ip not in _cluster_hosts(front),
            10,
            interval=0.2,
            what="reviews-2 to leave the caller's endpoints",
        )
        time.sleep(0.5)
    finally:
        load.stop()
    during = Load.summary(load.since(down_at))
    print(
        f"\nlink down: ejected after {ejected_after:.2f} s, entry removed after "
        f"{removed_after:.2f} s (grace {GRACE_S} s); {during['requests']} requests since, "
        f"{during['failures']} failed, {during['by_replica']}"
    )
    assert during["failures"] == 0, during
    assert during["requests"] >= 20, during
    assert set(during["by_replica"]) <= {"reviews-1", "reviews-2"}
    assert during["by_replica"].get("reviews-1", 0) >= 20, during
    assert mesh.entries()[r1.pod.ip]["serving"]
