"""Give memory freed after a push back to the operating system.

A push to a thousand proxies makes a burst of large buffers (grpc's copy of every response
queued on every stream). glibc keeps freed heap pages mapped for reuse, so without help the
control plane's resident memory stays at the burst's peak for good. `malloc_trim` returns
them; it is cheap when nothing is free, so it runs once things go quiet after sending.
Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger("shoal.controlplane")


def _malloc_trim() -> Callable[[], object] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


async def trim_when_quiet(sent: Callable[[], float], stop: asyncio.Event, every: float) -> None:
    """Every `every` seconds, trim the heap if `sent()` (a running count of bytes sent)
    moved since the last look and then stayed put for one period (the burst is over)."""
    trim = _malloc_trim()
    if trim is None:
        return
    last = seen = sent()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        now = sent()
        if now == seen and now != last:
            trim()
            last = now
        seen = now
