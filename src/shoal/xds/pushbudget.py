"""Bounded push concurrency: how many response bytes may be on their way at once.

grpc copies every message it is handed into its own buffers until the proxy reads it. A cold
start of a thousand proxies would otherwise hand it a thousand copies of a multi-megabyte
CDS+EDS response at once — the control plane's peak memory — although the proxies can only
take them at the pace of the CPU anyway. Streams therefore wait for a share of a byte budget
before handing over a large response (first come, first served) and return it once grpc took
the message.

A proxy that stops reading must not hold up everyone else: a grant is returned by itself
after `stuck_after` seconds, whatever that one stream is doing. Small responses (most endpoint
and route updates) do not wait at all; they cannot add up to much.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field


@dataclass(eq=False)
class Grant:
    size: int
    active: bool = True
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


class PushBudget:
    def __init__(self, budget: int, *, small: int = 64 * 1024, stuck_after: float = 2.0) -> None:
        self.budget = budget
        self.small = small
        self.stuck_after = stuck_after
        self.in_flight = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def _fits(self, size: int) -> bool:
        # one response larger than the whole budget still goes, alone
        return self.in_flight == 0 or self.in_flight + size <= self.budget

    async def acquire(self, size: int) -> Grant:
        if size < self.small:
            return Grant(0, active=False)
        if self._waiters or not self._fits(size):
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            entry = (size, future)
            self._waiters.append(entry)
            try:
                await future
            except asyncio.CancelledError:
                if entry in self._waiters:
                    self._waiters.remove(entry)
                elif future.done() and not future.cancelled():
                    self.in_flight -= size  # granted just as the stream went away
                    self._wake()
                raise
        else:
            self.in_flight += size
        grant = Grant(size)
        grant.timer = asyncio.get_running_loop().call_later(self.stuck_after, self.release, grant)
        return grant

    def release(self, grant: Grant) -> None:
        if not grant.active:
            return
        grant.active = False
        if grant.timer is not None:
            grant.timer.cancel()
        self.in_flight -= grant.size
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._fits(self._waiters[0][0]):
            size, future = self._waiters.popleft()
            if future.done():
                continue
            self.in_flight += size
            future.set_result(None)
