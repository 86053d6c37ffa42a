"""Resident memory and CPU time of a process, from /proc (Linux), plus percentile helpers."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

_TICK = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """VmRSS of ``pid`` in MiB."""
    return _status_kb(pid, "VmRSS") / 1024


def hwm_mb(pid: int) -> float:
    """VmHWM (peak resident memory) of ``pid`` in MiB."""
    return _status_kb(pid, "VmHWM") / 1024


def _status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def cpu_s(pid: int) -> float:
    """utime + stime of ``pid`` in seconds (its threads included)."""
    with open(f"/proc/{pid}/stat") as fh:
        # the command name (field 2) may contain spaces: split after its closing parenthesis
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


@dataclass
class CpuMeter:
    """CPU seconds a process spends between `start` and `stop`."""

    pid: int
    started: float = 0.0

    def start(self) -> None:
        self.started = cpu_s(self.pid)

    def stop(self) -> float:
        return cpu_s(self.pid) - self.started


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by the nearest-rank method; NaN if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]
