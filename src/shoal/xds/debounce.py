"""Debounce bursts of change events into one push, and pace pushes to the CPU they cost.

Waits for `quiet` seconds without a new event, but never more than `max_wait` after the first
event of a burst, so a steady trickle of changes cannot postpone a push forever.

With `cpu` (a process CPU clock), pushes are also paced: a push is not started before the
previous one has had `1/cpu_share` times the CPU time the process spent since it (by default
twice), so pushing takes at most about half of the control plane's CPU. Cheap pushes (a few
proxies, scoped config) are never delayed; under sustained churn against a large, unscoped
fleet each push carries more changes instead of pushes queueing up behind each other — and
every proxy's latency growing without bound. Never more than `pace_cap` seconds of extra wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Debouncer:
    def __init__(
        self,
        quiet: float,
        max_wait: float,
        action: Callable[[], None],
        *,
        cpu: Callable[[], float] | None = None,
        cpu_share: float = 0.5,
        pace_cap: float = 2.0,
    ) -> None:
        self.quiet = quiet
        self.max_wait = max_wait
        self.cpu_share = cpu_share
        self.pace_cap = pace_cap
        self._action = action
        self._cpu = cpu
        self._first: float | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._last: tuple[float, float] | None = None  # (loop time, cpu clock) at last fire

    def trigger(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._first is None:
            self._first = now
        if self._handle is not None:
            self._handle.cancel()
        delay = max(0.0, min(self.quiet, self._first + self.max_wait - now))
        self._handle = loop.call_later(delay, self._fire)

    def _earliest(self) -> float:
        """When the next push may start so that pushing stays within its CPU share."""
        if self._cpu is None or self._last is None:
            return 0.0
        at, clock = self._last
        return at + (self._cpu() - clock) / self.cpu_share

    def _fire(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        first = self._first if self._first is not None else now
        earliest = min(self._earliest(), first + self.max_wait + self.pace_cap)
        if now < earliest:
            self._handle = loop.call_later(earliest - now, self._fire)
            return
        self._first = None
        self._handle = None
        self._last = (now, self._cpu()) if self._cpu is not None else None
        self._action()
