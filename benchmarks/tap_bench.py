"""What the idle tap filter costs (`shoal tap`/`top`): Envoy CPU per request and latency of a
sidecar with the filter and nobody tapping, beside one without the filter, in one run; and,
for scale, the same sidecar while a tap is attached and read.

A standalone control plane serves two harness sidecars (plain Envoys with `shoal agent`'s
bootstrap shape, `--concurrency 1`) whose outbound listener routes to the minimal asyncio
backend of overhead_bench.py. `with-tap` sends ADMIN_PORT in its node metadata, so its HCM
starts with the tap filter (generate/telemetry_tap.py); `no-tap` does not, so it has none.
Rounds alternate under the same load (`wrk` when on PATH, else a Python generator); Envoy CPU
is utime+stime from /proc divided by the requests served; figures are medians over
`--rounds`. The last rows attach a real tap (`POST /tap`, the CLI's TapStream) to `with-tap`
and drain it while the load runs.

Run with ``.venv/bin/python benchmarks/tap_bench.py`` (about a minute).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from harness.configdir import ConfigDir
from harness.controlplane import ControlPlane
from harness.envoy import EnvoyProcess, sidecar_bootstrap, sidecar_node
from harness.load import fire
from harness.ports import free_port
from harness.wait import wait_until
from loadharness.procstat import cpu_s
from overhead_bench import SCRIPT as FAST_SCRIPT
from overhead_bench import Result, machine, run_python, run_wrk
from shoal.generate.telemetry_tap import OUTBOUND_TAP
from shoal.telemetry.tapstream import TapStream, TapTarget

HOST = "fast.default.svc.cluster.local"


def _service_entry(port: int) -> str:
    return f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: fast, namespace: default}}
spec:
  hosts: [{HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http: {port}}}}}]
"""


def _sidecar(
    cp: ControlPlane, workdir: Path, name: str, *, admin_in_metadata: bool
) -> tuple[EnvoyProcess, int]:
    outbound = free_port()
    node_id, metadata = sidecar_node(name, outbound_port=outbound, inbound_port=free_port())
    boot = sidecar_bootstrap(node_id, metadata, cp.xds_port, free_port())
    if not admin_in_metadata:
        del boot["node"]["metadata"]["ADMIN_PORT"]
    envoy = EnvoyProcess(boot, workdir, name=name)
    return envoy.start(), outbound


def _has_tap(envoy: EnvoyProcess) -> bool:
    # the filter's config id (the dump's node section lists every extension, tap included)
    return OUTBOUND_TAP in str(envoy.config_dump())


def _round(
    runner: Callable[[int, str, int, float], Result], port: int, pid: int, c: int, d: float
) -> tuple[Result, float]:
    before = cpu_s(pid)
    result = runner(port, HOST, c, d)
    return result, (cpu_s(pid) - before) / max(result.requests, 1) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per round")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--load", choices=("wrk", "python"), default=None)
    args = parser.parse_args(argv)
    load = args.load or ("wrk" if shutil.which("wrk") else "python")
    runner = run_wrk if load == "wrk" else run_python
    tmp = Path(tempfile.mkdtemp(prefix="tap-bench-"))
    backend_port = free_port()
    backend = subprocess.Popen(
        [sys.executable, str(FAST_SCRIPT), "--serve-fast"],
        env={**os.environ, "PORT": str(backend_port)},
    )
    envoys: list[EnvoyProcess] = []
    cp = None
    try:
        config = ConfigDir(tmp / "config")
        config.write("fast.yaml", _service_entry(backend_port))
        cp = ControlPlane(config.path, workdir=tmp).start()
        paths: dict[str, tuple[int, int]] = {}
        for name, admin in (("with-tap", True), ("no-tap", False)):
            envoy, port = _sidecar(cp, tmp, name, admin_in_metadata=admin)
            envoys.append(envoy)
            wait_until(lambda p=port: fire(p, HOST, 3)["status:200"] == 3, 20, what=name)
            paths[name] = (port, envoy.pid)
        assert _has_tap(envoys[0]) and not _has_tap(envoys[1]), "filter presence as expected"
        print(f"{machine()}; load: {load}, {args.connections} connections, {args.duration:g} s")
        out: dict[str, list[tuple[Result, float]]] = {"with-tap": [], "no-tap": [], "tapped": []}
        for port, _ in paths.values():
            runner(port, HOST, args.connections, 1.0)  # warm-up
        for i in range(args.rounds):
            for name, (port, pid) in paths.items():
                result, us = _round(runner, port, pid, args.connections, args.duration)
                out[name].append((result, us))
                print(
                    f"  round {i + 1}/{args.rounds} {name:<8} {result.rps:8.0f} req/s  "
                    f"p99 {result.p99_ms:6.2f} ms  Envoy CPU {us:6.1f} us/request",
                    flush=True,
                )
        # attached: every request is recorded, serialized and sent to the reader
        stream = TapStream(
            TapTarget(
                "with-tap",
                f"127.0.0.1:{envoys[0].admin_port}",
                "with-tap",
                OUTBOUND_TAP,
                "outbound",
            )
        )
        stream.attach()
        seen = [0]

        def drain() -> None:
            while (events := stream.read()) is not None:
                seen[0] += len(events)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        port, pid = paths["with-tap"]
        for _ in range(max(1, args.rounds // 2)):
            out["tapped"].append(_round(runner, port, pid, args.connections, args.duration))
        stream.close()
        reader.join(5)
        print()
        print(f"{'sidecar':<26} {'req/s':>8} {'p99 ms':>8} {'Envoy us/request':>17}")
        labels = {"no-tap": "no tap filter (baseline)", "with-tap": "tap filter, idle",
                  "tapped": "tap attached"}  # fmt: skip
        for name, label in labels.items():
            rows = out[name]
            rps = statistics.median(r.rps for r, _ in rows)
            p99 = statistics.median(r.p99_ms for r, _ in rows)
            us = statistics.median(u for _, u in rows)
            print(f"{label:<26} {rps:8.0f} {p99:8.2f} {us:17.1f}")
        base = statistics.median(u for _, u in out["no-tap"])
        idle = statistics.median(u for _, u in out["with-tap"])
        print(f"idle tap filter: {100 * (idle - base) / base:+.1f} % Envoy CPU per request; "
              f"{seen[0]} requests recorded while attached")  # fmt: skip
        return 0
    finally:
        for envoy in envoys:
            envoy.stop()
        if cp is not None:
            cp.stop()
        backend.terminate()
        backend.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
