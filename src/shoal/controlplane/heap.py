"""Keep the cyclic garbage collector off the long-lived config heap.

The control plane holds a large, long-lived heap (parsed resources, generated and serialized
config) that is referenced, not garbage. CPython's full collections walk all of it anyway,
and one at 1,000 services takes ~90 ms while the event loop (every xDS stream) waits: a
latency spike in the middle of a push. After each reload the heap is frozen (`gc.freeze`:
collections skip it; reference counting still frees whatever is dropped later). A full
collection still runs now and then, when the control plane is idle after a reload, so
cyclic garbage that was frozen is eventually reclaimed.
"""

from __future__ import annotations

import gc
import time


class HeapPolicy:
    def __init__(self, full_collect_every_s: float = 300.0) -> None:
        self.full_collect_every_s = full_collect_every_s
        self._last_full = time.monotonic()

    def after_reload(self) -> None:
        now = time.monotonic()
        if now - self._last_full >= self.full_collect_every_s:
            gc.unfreeze()
            gc.collect()
            self._last_full = now
        gc.freeze()
