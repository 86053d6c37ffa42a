"""What Istio's metrics cost: Envoy CPU per request and latency with telemetry on vs off, and
the time and size of a scrape of a proxy with about 1,000 series.

Runs ``shoal up`` on a temporary folder with two client -> server pairs, each workload one
replica with its own sidecar (``--concurrency 1``), the servers the minimal asyncio backend of
overhead_bench.py (so the proxies' cost is not hidden by the app):

* **on**: ``client-on -> server-on`` with shoal's default telemetry (every Istio metric, every
  label, on both sidecars);
* **off**: ``client-off -> server-off``, selected by a workload-level ``Telemetry`` that
  disables ``ALL_METRICS`` (the peer-identity header filter stays: it is not a metric).

Rounds alternate on and off under the same load (``wrk`` when on PATH, else a Python
generator); Envoy CPU is utime+stime of the two Envoys on the path (client's and server's)
from /proc, divided by the requests served. Figures are medians over ``--rounds``.

Then ``server-on`` gets a tag override that adds the request path as a label, and requests to
``--paths`` distinct paths make label sets until its metrics port serves about 1,000 series;
the scrape is timed (median of 20) beside Envoy's own admin ``/stats/prometheus`` for the same
stats (what the Lua rename adds) and the bytes are counted.

Run with ``.venv/bin/python benchmarks/telemetry_bench.py`` (about 2 minutes).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

# overhead_bench.py beside this file; the e2e harness under tests/
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from harness.configdir import ConfigDir
from harness.up import ShoalUp, descendants, get_via_proxy, process_table
from loadharness.procstat import cpu_s
from overhead_bench import (
    SCRIPT as FAST_SCRIPT,
)
from overhead_bench import (
    Result,
    machine,
    run_python,
    run_wrk,
    running,
)


def _workload(name: str, telemetry: str) -> str:
    return f"""apiVersion: shoal.dev/v1alpha1
kind: LocalWorkload
metadata: {{name: {name}, namespace: default}}
spec:
  service: {name}
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  labels: {{app: {name}, version: v1, telemetry: "{telemetry}"}}
  serviceAccount: {name}
  replicas: 1
  command: ["python", "{FAST_SCRIPT}", "--serve-fast"]
"""


OFF = """apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: metrics-off, namespace: default}
spec:
  selector: {matchLabels: {telemetry: "off"}}
  metrics:
  - overrides: [{match: {metric: ALL_METRICS}, disabled: true}]
"""

# --attribute: a third pair that counts requests but records none of the three histograms, to
# tell the stats logger's per-stat cost (every tag formatted per stat) from the peer filters'
COUNT_ONLY = """apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: count-only, namespace: default}
spec:
  selector: {matchLabels: {telemetry: "count"}}
  metrics:
  - overrides:
    - {match: {metric: REQUEST_DURATION}, disabled: true}
    - {match: {metric: REQUEST_SIZE}, disabled: true}
    - {match: {metric: RESPONSE_SIZE}, disabled: true}
"""

PATH_LABEL = """apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: path-label, namespace: default}
spec:
  selector: {matchLabels: {app: server-on}}
  metrics:
  - overrides:
    - match: {metric: ALL_METRICS}
      tagOverrides: {request_path: {value: "request.path"}}
"""


def modes(attribute: bool) -> tuple[str, ...]:
    return ("on", "off", "count") if attribute else ("on", "off")


def mesh_yaml(attribute: bool = False) -> str:
    parts = [
        _workload(name, mode)
        for mode in modes(attribute)
        for name in (f"client-{mode}", f"server-{mode}")
    ]
    return "---\n".join([*parts, OFF, *([COUNT_ONLY] if attribute else [])])


def envoy_pid(agent_pid: int) -> int:
    table = process_table()
    for proc in descendants(agent_pid, table):
        if proc.argv and Path(proc.argv[0]).name == "envoy":
            return proc.pid
    raise RuntimeError(f"no envoy under agent {agent_pid}")


def measure_cost(
    up: ShoalUp, load: str, connections: int, duration: float, rounds: int, *, attribute: bool
) -> dict[str, list[tuple[Result, float]]]:
    runner = run_wrk if load == "wrk" else run_python
    replicas = {r["workload"]: r for r in up.workloads()}
    paths = {}
    for mode in modes(attribute):
        client, server = replicas[f"client-{mode}"], replicas[f"server-{mode}"]
        pids = [envoy_pid(client["sidecar_pid"]), envoy_pid(server["sidecar_pid"])]
        paths[mode] = (client["ports"]["outbound"], f"server-{mode}", pids)
    for port, host, _ in paths.values():
        runner(port, host, connections, 1.0)  # warm-up: connections, pools, first label sets
    out: dict[str, list[tuple[Result, float]]] = {mode: [] for mode in paths}
    for round_ in range(rounds):
        # alternate which path goes first: a load change on the shared machine then falls on
        # both halves equally instead of always on the second
        order = list(paths.items()) if round_ % 2 == 0 else list(reversed(paths.items()))
        for mode, (port, host, pids) in order:
            before = sum(cpu_s(p) for p in pids)
            result = runner(port, host, connections, duration)
            used = sum(cpu_s(p) for p in pids) - before
            per_request_us = used / max(result.requests, 1) * 1e6
            out[mode].append((result, per_request_us))
            print(
                f"  round {round_ + 1}/{rounds} telemetry {mode:<3} {result.rps:8.0f} req/s  "
                f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  "
                f"Envoy CPU {per_request_us:6.1f} us/request  errors {result.errors}",
                flush=True,
            )
    return out


def _get(url: str) -> tuple[float, int, str]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = resp.read()
    return time.perf_counter() - started, len(body), body.decode()


def _series(text: str) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def measure_scrape(up: ShoalUp, config: ConfigDir, paths: int) -> None:
    config.write("path-label.yaml", PATH_LABEL)
    time.sleep(2.0)  # the listener change reaches server-on's sidecar
    replicas = {r["workload"]: r for r in up.workloads()}
    outbound = replicas["client-on"]["ports"]["outbound"]
    for i in range(paths):
        for _ in range(2):
            get_via_proxy(outbound, f"http://server-on/p{i}")
    time.sleep(6.0)  # one stats flush: the histograms appear
    server = replicas["server-on"]["ports"]
    metrics = f"http://127.0.0.1:{server['metrics']}/stats/prometheus"
    admin = f"http://127.0.0.1:{server['admin']}/stats/prometheus?usedonly&filter=%5Eistio%5C."
    for url in (metrics, admin):
        _get(url)  # warm
    rows = []
    for what, url in (("metrics port (Lua rename)", metrics), ("Envoy admin, raw", admin)):
        times = []
        size, text = 0, ""
        for _ in range(20):
            took, size, text = _get(url)
            times.append(took)
        rows.append((what, statistics.median(times) * 1000, size, _series(text)))
    print()
    print(f"Scrape of server-on's sidecar after {paths} paths x 2 requests (median of 20):")
    print(f"  {'endpoint':<28} {'ms':>7} {'bytes':>9} {'series':>7}")
    for what, ms, size, series in rows:
        print(f"  {what:<28} {ms:7.2f} {size:9d} {series:7d}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--load", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--paths", type=int, default=15, help="label sets for the scrape")
    parser.add_argument(
        "--attribute",
        action="store_true",
        help="a third pair with requests_total only (no histograms): what the per-stat tags cost",
    )
    args = parser.parse_args(argv)
    load = args.load
    if load == "auto":
        load = "wrk" if shutil.which("wrk") else "python"
    print("shoal telemetry cost: two sidecars, Istio metrics on vs off (same run)")
    print(f"machine: {machine()}; load: {load}, {args.connections} connections")
    with tempfile.TemporaryDirectory(prefix="shoal-telemetry-") as tmp:
        folder = ConfigDir(Path(tmp) / "bench")
        folder.write("bench.yaml", mesh_yaml(args.attribute))
        with running(folder.path, Path(tmp), 2 * len(modes(args.attribute))) as up:
            results = measure_cost(
                up, load, args.connections, args.duration, args.rounds, attribute=args.attribute
            )
            measure_scrape(up, folder, args.paths)
    print()
    print(f"Medians over {args.rounds} rounds of {args.duration:g} s:")
    print(
        f"  {'telemetry':<10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'Envoy us/req':>13}"
        f"  {'us/req min-max':>15}  {'p99 min-max':>15}"
    )
    medians = {}
    for mode, rows in results.items():
        rps = statistics.median(r.rps for r, _ in rows)
        p50 = statistics.median(r.p50_ms for r, _ in rows)
        p99s = [r.p99_ms for r, _ in rows]
        cpus = [c for _, c in rows]
        cpu = statistics.median(cpus)
        medians[mode] = cpu
        print(
            f"  {mode:<10} {rps:8.0f} {p50:8.2f} {statistics.median(p99s):8.2f} {cpu:13.1f}"
            f"  {min(cpus):7.0f}-{max(cpus):<7.0f}  {min(p99s):7.1f}-{max(p99s):<7.1f}"
        )
    extra = (medians["on"] / medians["off"] - 1) * 100 if medians["off"] else float("nan")
    print(f"  telemetry on costs {extra:+.1f} % Envoy CPU per request (goal: <= +10 %)")
    if "count" in medians and medians["off"]:
        count = (medians["count"] / medians["off"] - 1) * 100
        print(f"  requests_total only (peer filters + 1 stat of 4) costs {count:+.1f} %")
    # the same ratios round by round (the paths ran back to back): their spread says how much
    # of the medians' difference this machine can resolve
    for mode in (m for m in results if m != "off"):
        ratios = sorted(
            (a[1] / b[1] - 1) * 100 for a, b in zip(results[mode], results["off"], strict=True)
        )
        print(
            f"  {mode} vs off per round: "
            + ", ".join(f"{r:+.1f} %" for r in ratios)
            + f" (median {statistics.median(ratios):+.1f} %)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
