"""What the layout of the stats logger's tags costs Envoy per request, before and after packing.

Three Envoys side by side in one run, each one HTTP listener answering 200 itself (no app, no
second hop, so the logger is most of what differs), ``--concurrency 1``:

* **no logger**: the floor;
* **23 tags (before)**: shoal's stats logger of a server sidecar as it was generated until
  now: Istio's 4 HTTP stats (requests_total and 3 histograms), each with 23 tags, one per
  label;
* **packed (now)**: the logger shoal generates now (generate/telemetry.py): the same stats,
  the same format strings, all in one tag (shoal.common.packedlabels).

The loggers are the generator's own (``http_access_logs`` of a server sidecar's inbound
labels); the "before" one is the same config with its packed tag split back into 23 tags.
Rounds alternate the order; each loads one Envoy with ``wrk`` (1 thread, keep-alive
connections) for ``--duration`` seconds and divides its Envoy's utime+stime (/proc) by the
requests served. Figures are medians over ``--rounds``; each variant's per-round cost above
the floor is printed beside the "before" one's.

Run with ``.venv/bin/python benchmarks/statslogger_bench.py`` (about 1 minute).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.extensions.access_loggers.stats.v3 import stats_pb2

from harness import procs
from harness.ports import free_ports
from harness.wait import wait_until
from loadharness.procstat import cpu_s
from overhead_bench import Result, machine, run_wrk
from shoal.common import packedlabels
from shoal.generate.telemetry import http_access_logs
from shoal.generate.telemetry_labels import inbound_labels
from shoal.generate.telemetry_policy import DEFAULT, SERVER
from unit.generate.envoyhcm import ENVOY, bootstrap, get
from unit.generate.meshcfg import sidecar


def packed_loggers() -> list[accesslog_pb2.AccessLog]:
    proxy = sidecar(
        name="reviews", INBOUND_PORT="15006", APP_PORT="8080", SERVICE_HOST="reviews.default.svc"
    )
    return http_access_logs(inbound_labels(proxy, mtls=True), DEFAULT, SERVER)


def _split(stat: stats_pb2.Config.Stat) -> None:
    (tag,) = stat.tags
    labels = packedlabels.unpack(tag.value_format)
    del stat.tags[:]
    stat.tags.extend(stats_pb2.Config.Tag(name=n, value_format=v) for n, v in labels.items())


def separate_loggers() -> list[accesslog_pb2.AccessLog]:
    """The same loggers with one tag per label (the layout before packing)."""
    out = []
    for log in packed_loggers():
        body = log.typed_config.value
        config = stats_pb2.Config()
        # stats_scope (field 6, newer than these protos) is kept as an unknown field
        config.ParseFromString(body)
        for counter in config.counters:
            _split(counter.stat)
        for histogram in config.histograms:
            _split(histogram.stat)
        log.typed_config.value = config.SerializeToString(deterministic=True)
        out.append(log)
    return out


VARIANTS = ("no logger", "23 tags (before)", "packed (now)")


@contextlib.contextmanager
def envoy(
    tmp: Path, name: str, logs: Sequence[accesslog_pb2.AccessLog]
) -> Iterator[tuple[int, int]]:
    """One Envoy with `logs` on its listener; yields (pid, listener port)."""
    admin, port = free_ports(2)
    path = tmp / f"{name}.pb"
    path.write_bytes(bootstrap(admin, port, logs, (), 0).SerializeToString())
    with (tmp / f"{name}.log").open("wb") as log:
        argv = [str(ENVOY), "-c", str(path), "--disable-hot-restart", "--concurrency", "1"]
        proc = subprocess.Popen(
            [*argv, "-l", "warn"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.register(proc)
        try:
            wait_until(
                lambda: get(f"http://127.0.0.1:{admin}/ready") == "LIVE\n", 30, what="Envoy ready"
            )
            yield proc.pid, port
        finally:
            procs.terminate(proc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    print("stats logger layout: Envoy CPU per request, one HTTP listener answering itself")
    print(f"machine: {machine()}; load: wrk 1 thread, {args.connections} connections")
    configs = {
        VARIANTS[0]: [],
        VARIANTS[1]: separate_loggers(),
        VARIANTS[2]: packed_loggers(),
    }
    results: dict[str, list[tuple[Result, float]]] = {v: [] for v in VARIANTS}
    with (
        tempfile.TemporaryDirectory(prefix="shoal-statslogger-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        running = {
            name: stack.enter_context(envoy(Path(tmp), f"e{i}", logs))
            for i, (name, logs) in enumerate(configs.items())
        }
        for _, port in running.values():
            run_wrk(port, "bench", args.connections, 1.0)  # warm-up: the series exist
        for round_ in range(args.rounds):
            order = list(running.items())
            if round_ % 2:
                order.reverse()
            for name, (pid, port) in order:
                before = cpu_s(pid)
                result = run_wrk(port, "bench", args.connections, args.duration)
                used = cpu_s(pid) - before
                results[name].append((result, used / max(result.requests, 1) * 1e6))
            print(
                f"  round {round_ + 1}/{args.rounds}: "
                + ", ".join(f"{n} {results[n][-1][1]:.1f} us/req" for n in VARIANTS),
                flush=True,
            )
    print()
    print(f"Medians over {args.rounds} rounds of {args.duration:g} s:")
    print(f"  {'logger':<18} {'req/s':>8} {'p99 ms':>8} {'Envoy us/req':>13} {'above floor':>12}")
    floor = statistics.median(c for _, c in results[VARIANTS[0]])
    for name in VARIANTS:
        rows = results[name]
        cpu = statistics.median(c for _, c in rows)
        print(
            f"  {name:<18} {statistics.median(r.rps for r, _ in rows):8.0f}"
            f" {statistics.median(r.p99_ms for r, _ in rows):8.2f} {cpu:13.1f}"
            f" {cpu - floor:+12.1f}"
        )
    # round by round (the three ran back to back): the logger's own cost, before vs now
    ratios = sorted(
        (now[1] - none[1]) / (old[1] - none[1])
        for none, old, now in zip(*(results[v] for v in VARIANTS), strict=True)
        if old[1] > none[1]
    )
    above = {v: statistics.median(c for _, c in results[v]) - floor for v in VARIANTS[1:]}
    if above[VARIANTS[1]] > 0:
        ratio = above[VARIANTS[2]] / above[VARIANTS[1]]
        print(f"  packed logger's cost / 23-tag logger's: {ratio:.2f}x (medians above the floor)")
    if ratios:
        print(
            "  the same, round by round (noisy: a small difference over a jittery floor): "
            + ", ".join(f"{r:.2f}x" for r in ratios)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
