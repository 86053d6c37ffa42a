"""Debounce bursts of change events into one reload, and pace reloads to the last push's fan-out.

This schedules the control plane's reloads (read, parse, build, push), not xDS messages, so it
lives here rather than in `shoal.xds` (it used to be `xds/debounce.py`; it imports nothing of xds).

Waits for `quiet` seconds without a new event, but never more than `max_wait` after the first
event of a burst, so a steady trickle of changes cannot postpone a push forever.

With `busy` (whether the previous push is still on its way to many proxies), a push also waits
until the previous one has reached nearly all of them, checking every `poll` seconds. Under
sustained churn against a large, unscoped fleet each push then carries every change made while
the last one fanned out, instead of snapshots replacing each other mid-fan-out and the event
loop queueing work for proxies that are about to be told something newer (the latency of every
proxy then grew without bound). Never more than `pace_cap` seconds of extra wait, so a fleet
that stays busy (a stuck proxy, a slow network) still gets its changes.

An earlier version paced to the process's CPU clock; that clock counts grpc's own threads
reading ACKs, so under churn it kept the loop idle while pushes waited (measured: churn p99
5.6 s, the event loop 70 % idle).
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
        busy: Callable[[], bool] | None = None,
        poll: float = 0.02,
        pace_cap: float = 2.0,
    ) -> None:
        self.quiet = quiet
        self.max_wait = max_wait
        self.poll = poll
        self.pace_cap = pace_cap
        self._action = action
        self._busy = busy
        self._first: float | None = None
        self._handle: asyncio.TimerHandle | None = None

    def trigger(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._first is None:
            self._first = now
        if self._handle is not None:
            self._handle.cancel()
        delay = max(0.0, min(self.quiet, self._first + self.max_wait - now))
        self._handle = loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        first = self._first if self._first is not None else now
        if self._busy is not None and now < first + self.max_wait + self.pace_cap and self._busy():
            self._handle = loop.call_later(self.poll, self._fire)
            return
        self._first = None
        self._handle = None
        self._action()
