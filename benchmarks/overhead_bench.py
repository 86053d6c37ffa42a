"""Sidecar overhead: client -> backend directly vs client -> sidecar -> sidecar -> backend.

Runs ``shoal up`` on a temporary folder with two backends and an idle client workload, each
one replica with its own sidecar (``shoal agent`` + Envoy, ``--concurrency 1``, as ``shoal up``
starts them). Then, in the same run and alternating, it loads

* **direct**: the backend app's own port (``$PORT``), nothing in between;
* **2 sidecars**: the client's sidecar outbound port with ``Host: <backend>``, so every request
  crosses the client's outbound listener and the backend's inbound listener, as an app's
  request does under ``shoal up``.

Backends: **fast**, a minimal keep-alive HTTP/1.1 server on a bare asyncio Protocol (this
file, ``--serve-fast``; a fixed 3-byte answer, no parsing beyond the header end), which keeps
the backend from hiding the proxies' cost; and **sample**, the demo's own
``python -m shoal.samples.service`` (aiohttp, JSON answer), a realistic Python app.

Load: ``wrk`` (1 thread, keep-alive connections, ``--latency``) when it is on PATH, else a
Python asyncio closed-loop generator in this process; the output says which. Each figure is the
median over ``--rounds`` runs of ``--duration`` seconds, after a 1 s warm-up per target.

Then the secure data plane against its floor: ``shoal up --secure`` with the fast backend and
the client, and beside it a **hand-written 2-hop mTLS Envoy chain** (handchain.py: static
bootstraps, HTTP/2 over mTLS between the hops, the same fast backend app). Interleaved in one
run, each round measures three paths at saturation (closed loop: requests/s) and at a fixed
1,000 requests/s (wrk held to one schedule by a Lua ``delay``: p50/p99), with the CPU both
Envoys of the path used per request (utime+stime from /proc): the hand-written chain, shoal's
secure sidecars as they come (Istio metrics on), and shoal's with the metrics turned off
mesh-wide (a root namespace Telemetry), which is the like-for-like comparison: the hand-written
chain has no telemetry. The goal printed beside the figures: two secure shoal sidecars carry
>= 0.95x the hand-written chain's requests/s and add <= 1.05x its p99 at 1,000 requests/s.

``--attribute`` runs only the hand-written chain, with every piece of shoal's sidecar config
that a request pays for added (handchain.FEATURES) and with all but one of them, interleaved,
to find what each costs.

Last, it starts the demo (``shoal up examples/demo``) and reports the resident memory
(``VmRSS`` of /proc/PID/status) of the control plane (the ``shoal up`` process), the agents,
the Envoys and the sample apps once the demo has served traffic for a few seconds.

Every process started here is stopped in ``finally`` (also on SIGTERM / Ctrl-C). Run with
``.venv/bin/python benchmarks/overhead_bench.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# the e2e harness is the package `harness` under tests/
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # handchain.py beside this file

from harness.configdir import ConfigDir
from harness.up import REPO, ShoalUp, descendants, process_table, vm_rss_kib

SCRIPT = Path(__file__).resolve()

# -- the fast backend -------------------------------------------------------------------------

_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"


class _FastHTTP(asyncio.Protocol):
    """Answers every request on a kept-alive connection with the same fixed response."""

    def __init__(self) -> None:
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            head = self.buf[:end].lower()
            length = 0
            if (at := head.find(b"content-length:")) >= 0:
                length = int(head[at + 15 :].split(b"\r\n", 1)[0])
            if len(self.buf) < end + 4 + length:
                return  # the body is still on its way
            self.buf = self.buf[end + 4 + length :]
            assert self.transport is not None
            self.transport.write(_ANSWER)


async def _serve_fast(port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await loop.create_server(_FastHTTP, "127.0.0.1", port, backlog=1024)
    async with server:
        await stop.wait()


# -- load generators --------------------------------------------------------------------------


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    envoy_us: float = math.nan  # CPU of the path's two Envoys per request (chain comparison)


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk_ms(text: str, percent: str) -> float:
    match = re.search(rf"^\s*{percent}%\s+([0-9.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no {percent}% line in wrk output:\n{text}")
    return float(match.group(1)) * _UNIT_MS[match.group(2)]


def run_wrk(
    port: int, host: str, connections: int, duration: float, script: Path | None = None
) -> Result:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration:g}s",
            "--latency",
            *(["-s", str(script)] if script is not None else []),
            "-H",
            f"Host: {host}",
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 30,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if rps is None or total is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    for match in re.finditer(r"Socket errors: (.*)", out):
        errors += sum(int(n) for n in re.findall(r"\d+", match.group(1)))
    return Result(
        float(rps.group(1)), _wrk_ms(out, "50"), _wrk_ms(out, "99"), int(total.group(1)), errors
    )


async def _py_connection(
    port: int, request: bytes, deadline: float, latencies: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while (started := time.perf_counter()) < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            if match is None:
                raise RuntimeError(f"answer without Content-Length: {head!r}")
            await reader.readexactly(int(match.group(1)))
            latencies.append(time.perf_counter() - started)
            if status >= 400:
                errors[0] += 1
    finally:
        writer.close()


async def _py_load(port: int, host: str, connections: int, duration: float) -> Result:
    request = f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    latencies: list[float] = []
    errors = [0]
    started = time.perf_counter()
    await asyncio.gather(
        *(
            _py_connection(port, request, started + duration, latencies, errors)
            for _ in range(connections)
        )
    )
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    return Result(len(latencies) / elapsed, pct(50), pct(99), len(latencies), errors[0])


def run_python(port: int, host: str, connections: int, duration: float) -> Result:
    return asyncio.run(_py_load(port, host, connections, duration))


# -- the mesh under test ----------------------------------------------------------------------


def _workload(name: str, command: list[str]) -> str:
    argv = ", ".join(f'"{a}"' for a in command)
    return f"""apiVersion: shoal.dev/v1alpha1
kind: LocalWorkload
metadata: {{name: {name}, namespace: default}}
spec:
  service: {name}
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  labels: {{app: {name}, version: v1}}
  replicas: 1
  command: [{argv}]
"""


BACKENDS = {
    "fast": "minimal asyncio HTTP/1.1 server (this file, --serve-fast)",
    "sample": "python -m shoal.samples.service (aiohttp)",
}


def bench_mesh_yaml() -> str:
    fast = ["python", str(SCRIPT), "--serve-fast"]
    sample = ["python", "-m", "shoal.samples.service"]
    return "---\n".join(
        [_workload("fast", fast), _workload("sample", sample), _workload("client", fast)]
    )


@contextlib.contextmanager
def running(config_dir: Path | None, workdir: Path, replicas: int) -> Iterator[ShoalUp]:
    up = ShoalUp(config_dir, workdir, name=f"up-{config_dir.name if config_dir else 'demo'}")
    try:
        up.start()
        up.wait_ready(replicas, timeout=60)
        yield up
    except BaseException:
        print(up.describe(), file=sys.stderr)
        raise
    finally:
        survivors = up.stop()
        if survivors:
            print(f"warning: killed processes that outlived shoal up: {survivors}")


def measure_overhead(
    workdir: Path, load: str, connections: int, duration: float, rounds: int
) -> dict[tuple[str, str], list[Result]]:
    runner = run_wrk if load == "wrk" else run_python
    folder = ConfigDir(workdir / "bench")
    folder.write("bench.yaml", bench_mesh_yaml())
    results: dict[tuple[str, str], list[Result]] = {}
    with running(folder.path, workdir, 3) as up:
        workloads = {r["workload"]: r["ports"] for r in up.workloads()}
        outbound = workloads["client"]["outbound"]
        targets = {
            (backend, path): (port, backend)
            for backend in BACKENDS
            for path, port in (
                ("direct", workloads[backend]["app"]),
                ("2 sidecars", outbound),
            )
        }
        for port, host in targets.values():
            runner(port, host, connections, 1.0)  # warm-up: connections, pools, caches
        for round_ in range(rounds):
            for key, (port, host) in targets.items():
                result = runner(port, host, connections, duration)
                results.setdefault(key, []).append(result)
                print(
                    f"  round {round_ + 1}/{rounds} {key[0]:>6} {key[1]:<10} "
                    f"{result.rps:8.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
                    f"p99 {result.p99_ms:6.2f} ms  errors {result.errors}",
                    flush=True,
                )
    return results


# -- secure shoal sidecars against the hand-written mTLS chain --------------------------------

HAND, SHOAL, SHOAL_QUIET = "hand-written mTLS", "shoal --secure", "shoal, no telemetry"
CHAIN_PATHS = (HAND, SHOAL, SHOAL_QUIET)

# Istio's way to turn the metrics off mesh-wide (the root namespace's Telemetry); access logs
# and tracing are off unless MeshConfig or a Telemetry asks. The hand-written chain has no
# telemetry at all, so this is the like-for-like comparison.
NO_TELEMETRY = """apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata:
  name: mesh-default
  namespace: istio-system
spec:
  metrics:
  - overrides:
    - match:
        metric: ALL_METRICS
      disabled: true
"""


# wrk's `delay()` hook, asked before each request a connection sends: every connection takes
# the next free slot of one schedule of `rps` slots per second (a monotonic clock through
# LuaJIT's ffi, which Debian's wrk links), so the connections together send `rps` requests/s
# whatever the latency, as long as enough of them are free. wrk's timer granularity is 1 ms;
# slots keep their fractions, so the rate holds on average.
_PACED_LUA = """local ffi = require("ffi")
ffi.cdef[[
typedef struct {{ long tv_sec; long tv_nsec; }} shoal_timespec;
int clock_gettime(int clk_id, shoal_timespec *tp);
]]
local ts = ffi.new("shoal_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local interval, slot = {interval:.6f}, 0
function delay()
  local now = now_ms()
  slot = math.max(slot + interval, now)
  return math.floor(slot - now + 0.5)
end
"""


def paced_script(workdir: Path, rps: float) -> Path:
    """A wrk script holding the load at `rps` requests/s (open schedule, see above)."""
    path = workdir / f"paced-{rps:g}.lua"
    path.write_text(_PACED_LUA.format(interval=1000.0 / rps))
    return path


def cpu_ticks(pids: list[int]) -> int:
    """utime + stime of `pids` so far, in clock ticks (/proc/PID/stat)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total


def envoy_pids(up: ShoalUp) -> list[int]:
    """The Envoys `shoal up` started (one per replica's sidecar)."""
    return [p.pid for p in up.track() if p.argv and Path(p.argv[0]).name == "envoy"]


def _secure_up(workdir: Path, name: str, telemetry: bool) -> ShoalUp:
    folder = ConfigDir(workdir / name)
    fast = ["python", str(SCRIPT), "--serve-fast"]
    docs = [_workload("fast", fast), _workload("client", fast)]
    if not telemetry:
        docs.append(NO_TELEMETRY)
    folder.write("bench.yaml", "---\n".join(docs))
    return ShoalUp(folder.path, workdir, name=f"up-{name}", extra_args=["--secure"])


def measure_chain(
    workdir: Path, connections: int, duration: float, rounds: int, rate: float
) -> dict[tuple[str, str], list[Result]]:
    """(path, "max" | "paced") -> results, the three paths interleaved round by round: the
    hand-written chain, shoal's secure sidecars as configured by default (Istio metrics on),
    and shoal's with the metrics turned off mesh-wide (the hand-written chain has none)."""
    from handchain import hand_chain

    paced = paced_script(workdir, rate)
    results: dict[tuple[str, str], list[Result]] = {}
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
    ups = {
        SHOAL: _secure_up(workdir, "secure", telemetry=True),
        SHOAL_QUIET: _secure_up(workdir, "secure-quiet", telemetry=False),
    }
    try:
        outbound: dict[str, int] = {}
        pids: dict[str, list[int]] = {}
        fast_app = 0
        for path, up in ups.items():
            up.start()
            workloads = {r["workload"]: r["ports"] for r in up.wait_ready(2, timeout=60)}
            outbound[path] = workloads["client"]["outbound"]
            pids[path] = envoy_pids(up)
            fast_app = fast_app or workloads["fast"]["app"]
        # the hand-written chain fronts the first mesh's backend app: the same app process
        with hand_chain(workdir / "hand", fast_app) as (hand_port, pids[HAND]):
            ports = {HAND: hand_port, **outbound}
            for port in ports.values():
                run_wrk(port, "fast", connections, 1.0)  # warm-up: connections, TLS sessions
            for round_ in range(rounds):
                for mode in ("max", "paced"):
                    for path, port in ports.items():
                        before = cpu_ticks(pids[path])
                        if mode == "max":
                            result = run_wrk(port, "fast", connections, duration)
                        else:
                            result = run_wrk(port, "fast", 10, duration, paced)
                        used = (cpu_ticks(pids[path]) - before) * tick_us
                        result.envoy_us = used / max(1, result.requests)
                        results.setdefault((path, mode), []).append(result)
                        print(
                            f"  round {round_ + 1}/{rounds} {mode:>5} {path:<20} "
                            f"{result.rps:8.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
                            f"p99 {result.p99_ms:6.2f} ms  Envoys {result.envoy_us:5.0f} us/req  "
                            f"errors {result.errors}",
                            flush=True,
                        )
    except BaseException:
        for up in ups.values():
            print(up.describe(), file=sys.stderr)
        raise
    finally:
        for up in ups.values():
            up.stop()
    return results


def print_chain(
    results: dict[tuple[str, str], list[Result]], connections: int, duration: float, rate: float
) -> None:
    print()
    print(
        f"{'mode':<22} {'path':<20} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'Envoys us/req':>13} {'errors':>7}"
    )
    for mode, label in (("max", "saturated"), ("paced", f"paced ~{rate:g} rps")):
        for path in CHAIN_PATHS:
            rs = results[(path, mode)]
            print(
                f"{label:<22} {path:<20} {_median(rs, 'rps'):8.0f} {_median(rs, 'p50_ms'):8.2f} "
                f"{_median(rs, 'p99_ms'):8.2f} {_median(rs, 'envoy_us'):13.0f} "
                f"{sum(r.errors for r in rs):7d}"
            )
    for mesh, what in ((SHOAL_QUIET, "like for like, no telemetry"), (SHOAL, "Istio metrics on")):
        rps_ratio = _median(results[(mesh, "max")], "rps") / _median(results[(HAND, "max")], "rps")
        p99_ratio = _median(results[(mesh, "paced")], "p99_ms") / _median(
            results[(HAND, "paced")], "p99_ms"
        )
        cpu_ratio = _median(results[(mesh, "max")], "envoy_us") / _median(
            results[(HAND, "max")], "envoy_us"
        )
        print(
            f"{mesh}/hand-written ({what}): {cpu_ratio:.2f}x the Envoy CPU per request, "
            f"{rps_ratio:.2f}x the requests/s (goal >= 0.95x: "
            f"{'met' if rps_ratio >= 0.95 else 'NOT met'}), {p99_ratio:.2f}x the p99 at "
            f"~{rate:g} rps (goal <= 1.05x: {'met' if p99_ratio <= 1.05 else 'NOT met'})"
        )
    print(
        f"(saturated: wrk, {connections} keep-alive connections, closed loop; paced: "
        f"{rate:g} requests/s on one schedule over 10 connections; median of the rounds, "
        f"{duration:g} s each, paths interleaved)"
    )


# -- what each piece of shoal's sidecar config costs, on the hand-written chain --------------


def attribution_variants() -> dict[str, frozenset[str]]:
    """The hand-written chain alone, with every feature of handchain.FEATURES, and with all
    but each one (pieces alone are lost in the noise; what removing one saves is not)."""
    from handchain import FEATURES

    every = frozenset(FEATURES)
    out = {"hand-written": frozenset[str](), "+ all": every}
    out.update({f"+ all - {name}": every - {name} for name in FEATURES})
    return out


def measure_attribution(
    workdir: Path, connections: int, duration: float, rounds: int
) -> dict[str, list[Result]]:
    """Every variant in front of one fast backend, interleaved round by round, saturated."""
    from handchain import hand_chain
    from harness.ports import free_port

    port = free_port()
    app = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--serve-fast"], env={**os.environ, "PORT": str(port)}
    )
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
    results: dict[str, list[Result]] = {}
    try:
        with contextlib.ExitStack() as stack:
            chains = {
                name: stack.enter_context(hand_chain(workdir / f"attr-{i}", port, features))
                for i, (name, features) in enumerate(attribution_variants().items())
            }
            for chain_port, _ in chains.values():
                run_wrk(chain_port, "fast", connections, 1.0)  # warm-up
            for round_ in range(rounds):
                for name, (chain_port, pids) in chains.items():
                    before = cpu_ticks(pids)
                    result = run_wrk(chain_port, "fast", connections, duration)
                    result.envoy_us = (cpu_ticks(pids) - before) * tick_us / max(1, result.requests)
                    results.setdefault(name, []).append(result)
                print(f"  round {round_ + 1}/{rounds} done", flush=True)
    finally:
        app.terminate()
        app.wait(timeout=10)
    return results


def print_attribution(results: dict[str, list[Result]], duration: float) -> None:
    from handchain import FEATURES

    print()
    print(f"{'hand-written chain':<28} {'Envoys us/req':>13} {'ratio (q1-q3)':>22} {'req/s':>7}")
    base = results["hand-written"]
    every = results["+ all"]
    for name, rs in results.items():
        # per round against the reference measured in the same round: the machine's load
        # moves both alike
        ref = every if name.startswith("+ all - ") else base
        ratios = sorted(r.envoy_us / b.envoy_us for r, b in zip(rs, ref, strict=True))
        q1, q3 = ratios[len(ratios) // 4], ratios[-1 - len(ratios) // 4]
        against = "/all" if ref is every else "/hand"
        print(
            f"{name:<28} {_median(rs, 'envoy_us'):13.0f} "
            f"{statistics.median(ratios):8.3f}{against:<5} ({q1:.3f}-{q3:.3f}) "
            f"{_median(rs, 'rps'):7.0f}"
        )
    print(
        f"(saturated, median of {len(base)} rounds of {duration:g} s; ratio: CPU per request "
        "against the hand-written chain, or for '+ all - X' against '+ all', in the same round)"
    )
    for name, what in FEATURES.items():
        print(f"  {name:<10} {what}")


@dataclass
class Rss:
    what: str
    kib: list[int]
    pids: list[int]


def measure_memory(workdir: Path, settle: float) -> list[Rss]:
    with running(REPO / "examples" / "demo", workdir, 6) as up:
        time.sleep(settle)  # let the demo's traffic generator exercise every sidecar
        workloads = up.workloads()
        agents = [r["sidecar_pid"] for r in workloads]
        table = process_table()
        envoys = [
            p.pid
            for agent in agents
            for p in descendants(agent, table)
            if p.argv and Path(p.argv[0]).name == "envoy"
        ]
        apps = [
            r["app_pid"]
            for r in workloads
            if r["app_pid"] and "shoal.samples.service" in " ".join(_argv(r["app_pid"]))
        ]
        groups = [
            ("control plane (shoal up)", [up.pid]),
            ("agent (shoal agent)", agents),
            ("Envoy (--concurrency 1)", envoys),
            ("sample app (shoal.samples.service)", apps),
        ]
        return [Rss(what, [vm_rss_kib(p) for p in pids], pids) for what, pids in groups]


def _argv(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")


# -- report -----------------------------------------------------------------------------------


def _median(results: list[Result], field: str) -> float:
    return statistics.median(getattr(r, field) for r in results)


def print_overhead(
    results: dict[tuple[str, str], list[Result]], load: str, connections: int, duration: float
) -> None:
    print()
    print(
        f"{'backend':<8} {'path':<22} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'requests':>9} {'errors':>7}"
    )
    for backend in BACKENDS:
        direct, mesh = results[(backend, "direct")], results[(backend, "2 sidecars")]
        for path, rs in (("direct", direct), ("2 sidecars", mesh)):
            print(
                f"{backend:<8} {path:<22} {_median(rs, 'rps'):8.0f} {_median(rs, 'p50_ms'):8.2f} "
                f"{_median(rs, 'p99_ms'):8.2f} {sum(r.requests for r in rs):9d} "
                f"{sum(r.errors for r in rs):7d}"
            )
        ratios = [_median(mesh, f) / _median(direct, f) for f in ("rps", "p50_ms", "p99_ms")]
        added = _median(mesh, "p50_ms") - _median(direct, "p50_ms")
        print(
            f"{backend:<8} {'ratio 2 sidecars/direct':<22} {ratios[0]:7.2f}x "
            f"{ratios[1]:7.1f}x {ratios[2]:7.1f}x   (p50 {added:+.2f} ms)"
        )
    print(
        f"\nload: {load}, {connections} keep-alive connections, closed loop; "
        f"median of the rounds, {duration:g} s each"
    )


def print_memory(rows: list[Rss]) -> None:
    print()
    print(f"{'resident memory on the running demo':<36} {'n':>3} {'MiB':>7} {'min':>7} {'max':>7}")
    for row in rows:
        mib = [k / 1024 for k in row.kib]
        print(
            f"{row.what:<36} {len(mib):3d} {statistics.median(mib):7.1f} "
            f"{min(mib):7.1f} {max(mib):7.1f}"
        )
    print("(VmRSS of /proc/PID/status; MiB is the median over the n processes of that kind)")


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def _envoy_version() -> str:
    envoy = REPO / ".venv" / "bin" / "envoy"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            [str(envoy), "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
        match = re.search(r"version: \S+/([0-9.]+)/", out)
        if match:
            return match.group(1)
    return "unknown"


def _wrk_version() -> str:
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return (out.stdout + out.stderr).splitlines()[0].split(" [")[0]


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--load", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--settle", type=float, default=5.0, help="seconds of demo traffic before measuring RSS"
    )
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="requests/s of the paced chain comparison"
    )
    parser.add_argument(
        "--only-chain",
        action="store_true",
        help="only secure shoal sidecars against the hand-written mTLS chain",
    )
    parser.add_argument(
        "--attribute",
        action="store_true",
        help="only the hand-written chain with each piece of shoal's sidecar config added",
    )
    parser.add_argument("--serve-fast", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_fast:  # run as the fast backend's app by shoal up
        asyncio.run(_serve_fast(int(os.environ["PORT"])))
        return 0

    load = args.load
    if load == "auto":
        load = "wrk" if shutil.which("wrk") else "python"
    if load == "wrk" and shutil.which("wrk") is None:
        parser.error("wrk is not on PATH (apt-get install wrk), or use --load python")
    signal.signal(signal.SIGTERM, _terminate)
    started = time.perf_counter()
    described = (
        _wrk_version() + " (1 thread)"
        if load == "wrk"
        else "Python asyncio load generator in this process "
        + ("(--load python)" if shutil.which("wrk") else "(wrk not found)")
    )
    print("shoal sidecar overhead: client -> backend vs client -> sidecar -> sidecar -> backend")
    print(f"machine: {machine()}; Envoy {_envoy_version()}")
    print(f"load generator: {described}")
    for name, what in BACKENDS.items():
        print(f"backend {name}: {what}")
    if args.attribute:
        with tempfile.TemporaryDirectory(prefix="shoal-overhead-") as tmp:
            found = measure_attribution(Path(tmp), args.connections, args.duration, args.rounds)
        print_attribution(found, args.duration)
        print(f"(total benchmark time {time.perf_counter() - started:.0f} s)")
        return 0
    with tempfile.TemporaryDirectory(prefix="shoal-overhead-") as tmp:
        results = memory = None
        if not args.only_chain:
            results = measure_overhead(
                Path(tmp), load, args.connections, args.duration, args.rounds
            )
        chain = None
        if shutil.which("wrk"):
            chain = measure_chain(
                Path(tmp), args.connections, args.duration, args.rounds, args.rate
            )
        if not args.only_chain:
            memory = measure_memory(Path(tmp), args.settle)
    if results is not None:
        print_overhead(results, described, args.connections, args.duration)
    if chain is not None:
        print_chain(chain, args.connections, args.duration, args.rate)
    else:
        print("\nsecure sidecars vs the hand-written mTLS chain: skipped (needs wrk on PATH)")
    if memory is not None:
        print_memory(memory)
    print(f"(total benchmark time {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
