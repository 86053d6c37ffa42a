"""The scale benchmarks' figures: formatting, percentiles over changes, the machine line.

Shared by scale_bench.py and kube_scale_bench.py, so both judge "p99" and "fan-out" alike.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
from pathlib import Path

from loadharness.measure import Change
from loadharness.procstat import percentile


def ms(x: float) -> str:
    return "-" if math.isnan(x) else f"{x * 1000:.0f}"


def secs(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.2f}"


def ratio(a: float, b: float) -> str:
    return "-" if math.isnan(a) or math.isnan(b) or b <= 0 else f"{a / b:.1f}x"


def pooled(changes: list[Change], q: float) -> float:
    """Percentile over every affected proxy of every change (NaN counts as not converged)."""
    lat = [x for c in changes for x in c.latencies]
    if any(math.isnan(x) for x in lat):
        return math.nan
    return percentile(lat, q)


def per_change(changes: list[Change], q: float) -> float:
    """Percentile over changes of "every affected proxy ACKed"."""
    return percentile([c.all_s for c in changes], q) if changes else math.nan


def fanout(changes: list[Change]) -> float:
    """Median over changes of: first response of the measured type -> every proxy ACKed (the
    fan-out alone, without file watcher, debounce and reload)."""
    return median([c.all_s - c.first_rx for c in changes])


def median(values: list[float]) -> float:
    return percentile(values, 50) if values else math.nan


def met(ok: bool | None) -> str:
    return "-" if ok is None else ("MET" if ok else "NOT MET")


def machine() -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(
                line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, load avg {load}, "
        f"shoal src at {src_commit()}"
    )


def src_commit() -> str:
    """The commit of src/ (the control plane measured), with "+dirty" for local changes."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "log", "-1", "--format=%h", "--", "src"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return commit + ("+dirty" if dirty else "")
