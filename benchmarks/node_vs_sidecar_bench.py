"""N pods on one host: a sidecar per pod vs one node proxy (`shoal agent --mode node`).

Both modes in one run, on the same pods: network namespaces on a bridge (runtime/podnet.py),
`reviews` (a minimal keep-alive HTTP server on its own 127.0.0.1:8080) and N-1 clients, one
secure control plane (subprocess, `--host 0.0.0.0` so pods reach it on the bridge address).

* **sidecar**: in every pod, `shoal agent` (loopback ports 15001/15006) inside the pod's
  netns (`ip netns exec`), each with its own workload token and certificate;
* **node**: one `shoal agent --mode node` on the host, one Envoy holding every pod's
  listeners inside its netns, a node token naming the pods' identities.

Each client pod runs `wrk --latency` (1 thread, `--connections` keep-alive connections, all
clients at once, `--duration` s after a 1 s warm-up) against its 127.0.0.1:15001 with
`Host: reviews...`: a request crosses the client's outbound listener, mTLS, and reviews'
inbound listener, in either mode. Figures: the sum of the Envoys' VmRSS after the load
(memory), the Envoys' utime+stime over the run divided by the requests served (CPU per
request), the clients' mean p50 and worst p99, requests/s. Closed loop: p50/p99 are at each
mode's own saturation on this machine, so compare CPU per request and memory first.

Needs root. Every process, namespace and the bridge are removed in `finally`.
Run: `sudo .venv/bin/python benchmarks/node_vs_sidecar_bench.py --pods 4`
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from shoal.ca import Identity, TokenIssuer
from shoal.ca.authority import ROOTS
from shoal.ca.nodetokens import NodeTokens
from shoal.runtime.podnet import Pod, PodNetwork

HOST = "reviews.default.svc.cluster.local"
# a minimal keep-alive HTTP/1.1 server (one write per answer: no Nagle/delayed-ACK stalls)
APP = """
import asyncio
ANSWER = b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok"
class P(asyncio.Protocol):
    def connection_made(self, t): self.t, self.buf = t, b""
    def data_received(self, data):
        self.buf += data
        while b"\\r\\n\\r\\n" in self.buf:
            _, self.buf = self.buf.split(b"\\r\\n\\r\\n", 1)
            self.t.write(ANSWER)
async def main():
    server = await asyncio.get_running_loop().create_server(P, "127.0.0.1", 8080)
    await server.serve_forever()
asyncio.run(main())
"""
MESH = """apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: strict, namespace: default}}
spec: {{mtls: {{mode: STRICT}}}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [{host}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints:
  - address: {ip}
    ports: {{http: 15006}}
    labels: {{app: reviews, security.istio.io/tlsMode: istio}}
    serviceAccount: reviews
"""
AGENT = [sys.executable, "-m", "shoal.agent", "--log-level", "WARNING"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children_envoys(pid: int) -> list[int]:
    """Envoy processes whose parent is `pid` (the agent)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and comm.startswith("envoy"):
            out.append(int(entry.name))
    return out


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _wrk(netns: str, seconds: float, connections: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["ip", "netns", "exec", netns, "wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s",
         "--latency", "-H", f"Host: {HOST}", "http://127.0.0.1:15001/"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _parse_wrk(out: str) -> tuple[int, float, float, int]:
    """(requests, p50 ms, p99 ms, non-2xx + socket errors)."""
    if "requests in" not in out:
        raise SystemExit(f"wrk said:\n{out}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = (int(bad.group(1)) if bad else 0) + (
        sum(int(g) for g in errors.groups()) if errors else 0
    )
    return requests, p50, p99, failed


def _ready(netns: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = subprocess.run(
            ["ip", "netns", "exec", netns, "curl", "-s", "-m", "2", "-o", "/dev/null",
             "-w", "%{http_code}", "-H", f"Host: {HOST}", "http://127.0.0.1:15001/"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if probe.stdout == "200":
            return
        time.sleep(0.5)
    raise SystemExit(f"no 200 from pod {netns} within {timeout:.0f} s")


class Run:
    def __init__(self, work: Path, net: PodNetwork, pods: dict[str, Pod]) -> None:
        self.work, self.net, self.pods = work, net, pods
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, argv: list[str], log: str) -> subprocess.Popen[bytes]:
        with open(self.work / log, "ab") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        self.procs.append(proc)
        return proc

    def stop(self, procs: list[subprocess.Popen[bytes]]) -> None:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc in self.procs:
                self.procs.remove(proc)


def _common(xds: str, token: Path, ca_dir: Path) -> list[str]:
    return [
        "--xds-address", xds, "--token-file", str(token), "--ca-root", str(ca_dir / ROOTS),
        "--prometheus-port", "0", "--disable-hot-restart", "--concurrency", "1",
    ]  # fmt: skip


@contextmanager
def _sidecars(run: Run, xds: str, ca_dir: Path) -> Iterator[list[int]]:
    agents = []
    tokens = TokenIssuer.in_dir(ca_dir)
    for name, pod in run.pods.items():
        token = run.work / f"{name}.token"
        token.write_text(tokens.issue(Identity("default", name)))
        token.chmod(0o600)
        ports = ["--inbound-port", "15006", "--app-port", "8080"] if name == "reviews" else []
        argv = [
            "ip", "netns", "exec", pod.netns, *AGENT, "--name", name,
            "--service-account", name, "--labels", f"app={name}", "--ip", pod.ip,
            "--outbound-port", "15001", *ports, "--admin-port", "15000",
            "--health-port", "15021", *_common(xds, token, ca_dir),
        ]  # fmt: skip
        agents.append(run.spawn(argv, f"sidecar-{name}.log"))
    try:
        yield [a.pid for a in agents]
    finally:
        run.stop(agents)


@contextmanager
def _node(run: Run, xds: str, ca_dir: Path) -> Iterator[list[int]]:
    listing = [
        {"name": name, "namespace": "default", "ip": pod.ip, "netns": f"/var/run/netns/{pod.netns}",
         "service_account": name, "labels": {"app": name}, "outbound_port": 15001,
         **({"inbound_port": 15006, "app_port": 8080} if name == "reviews" else {})}
        for name, pod in run.pods.items()
    ]  # fmt: skip
    (run.work / "pods.json").write_text(json.dumps(listing))
    token = run.work / "node.token"
    token.write_text(
        NodeTokens.in_dir(ca_dir).issue("n1", [Identity("default", n) for n in run.pods])
    )
    token.chmod(0o600)
    argv = [
        *AGENT, "--mode", "node", "--name", "n1", "--pods", str(run.work / "pods.json"),
        "--admin-port", str(_free_port()), "--health-port", str(_free_port()),
        *_common(xds, token, ca_dir),
    ]  # fmt: skip
    agent = run.spawn(argv, "node-agent.log")
    try:
        yield [agent.pid]
    finally:
        run.stop([agent])


def _measure(
    run: Run, agents: list[int], clients: list[str], seconds: float, connections: int
) -> dict[str, float]:
    for name in clients:
        _ready(run.pods[name].netns)
    envoys: list[int] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        # sidecar agents run under `ip netns exec`, which execs: the agent is that pid
        envoys = [e for a in agents for e in _children_envoys(a)]
        if len(envoys) >= len(agents):
            break
        time.sleep(0.2)
    for wrk in [_wrk(run.pods[c].netns, 1, connections) for c in clients]:
        wrk.communicate()  # warm-up
    cpu0 = sum(_cpu_s(e) for e in envoys)
    outs = [
        w.communicate()[0] for w in [_wrk(run.pods[c].netns, seconds, connections) for c in clients]
    ]
    cpu = sum(_cpu_s(e) for e in envoys) - cpu0
    results = [_parse_wrk(o) for o in outs]
    requests = sum(r[0] for r in results)
    return {
        "envoys": len(envoys),
        "rss_mb": sum(_rss_mb(e) for e in envoys),
        "cpu_us_per_req": cpu / max(requests, 1) * 1e6,
        "rps": requests / seconds,
        "p50_ms": sum(r[1] for r in results) / len(results),
        "p99_ms": max(r[2] for r in results),
        "failed": sum(r[3] for r in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=4, help="pods in all: reviews + N-1 clients")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=2, help="per client pod")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("node_vs_sidecar_bench needs root (network namespaces)")
    with tempfile.TemporaryDirectory(prefix="shoal-nodebench-") as tmp:
        work = Path(tmp)
        net = PodNetwork(work / "state", subnet="10.254.91", tag=f"nb{os.getpid() % 1000}")
        net.open()
        run: Run | None = None
        try:
            names = ["reviews", *(f"client{i}" for i in range(1, args.pods))]
            pods = {n: net.add_pod(n) for n in names}
            run = Run(work, net, pods)
            (work / "config").mkdir()
            (work / "config" / "mesh.yaml").write_text(
                MESH.format(host=HOST, ip=pods["reviews"].ip)
            )
            ca_dir, xds_port = work / "ca", _free_port()
            admin = _free_port()
            run.spawn(
                [sys.executable, "-m", "shoal.cli.main", "control-plane", "--config-dir",
                 str(work / "config"), "--secure", "--ca-dir", str(ca_dir), "--host", "0.0.0.0",
                 "--xds-port", str(xds_port), "--admin-port", str(admin)],
                "control-plane.log",
            )  # fmt: skip
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{admin}/ready", timeout=2)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit("control plane not ready") from None
                    time.sleep(0.3)
            run.spawn(
                ["ip", "netns", "exec", pods["reviews"].netns, sys.executable, "-c", APP], "app.log"
            )
            clients = names[1:]
            figures = {}
            xds_in_pod = f"{net.host_ip}:{xds_port}"
            with _sidecars(run, xds_in_pod, ca_dir) as agents:
                figures["sidecar"] = _measure(run, agents, clients, args.duration, args.connections)
            with _node(run, f"127.0.0.1:{xds_port}", ca_dir) as agents:
                figures["node"] = _measure(run, agents, clients, args.duration, args.connections)
        finally:
            if run is not None:
                run.stop(list(run.procs))
            net.close()
    print(
        f"{args.pods} pods (reviews + {args.pods - 1} clients), {args.connections} wrk "
        f"connections per client, {args.duration:.0f} s, load {os.getloadavg()[0]:.1f}"
    )
    print(f"{'mode':8} {'envoys':>6} {'RSS MB':>8} {'CPU us/req':>10} {'req/s':>8} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'failed':>6}")  # fmt: skip
    for mode, f in figures.items():
        print(
            f"{mode:8} {f['envoys']:>6.0f} {f['rss_mb']:>8.1f} {f['cpu_us_per_req']:>10.1f} "
            f"{f['rps']:>8.0f} {f['p50_ms']:>7.2f} {f['p99_ms']:>7.2f} {f['failed']:>6.0f}"
        )
    side, node = figures["sidecar"], figures["node"]
    print(
        f"node/sidecar: memory {node['rss_mb'] / side['rss_mb']:.2f}x, CPU per request "
        f"{node['cpu_us_per_req'] / side['cpu_us_per_req']:.2f}x, "
        f"p99 {node['p99_ms'] / side['p99_ms']:.2f}x"
    )


if __name__ == "__main__":
    main()
