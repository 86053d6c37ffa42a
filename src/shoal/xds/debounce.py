"""Debounce bursts of change events into one push.

Waits for `quiet` seconds without a new event, but never more than `max_wait` after the first
event of a burst, so a steady trickle of changes cannot postpone a push forever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Debouncer:
    def __init__(self, quiet: float, max_wait: float, action: Callable[[], None]) -> None:
        self.quiet = quiet
        self.max_wait = max_wait
        self._action = action
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
        self._first = None
        self._handle = None
        self._action()
