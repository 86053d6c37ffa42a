"""Debouncing: bursts become one push, a trickle still pushes by the maximum wait, and pushes
are paced to the CPU they cost (never beyond a cap)."""

from __future__ import annotations

import asyncio

from shoal.xds.debounce import Debouncer


async def test_a_burst_becomes_one_action_and_a_trickle_still_fires_by_max_wait() -> None:
    fired: list[float] = []
    loop = asyncio.get_running_loop()
    d = Debouncer(0.05, 0.2, lambda: fired.append(loop.time()))
    for _ in range(5):
        d.trigger()
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    assert len(fired) == 1
    fired.clear()
    start = loop.time()
    for _ in range(12):  # an event every 30 ms never leaves 50 ms of quiet
        d.trigger()
        await asyncio.sleep(0.03)
    assert fired and fired[0] - start < 0.3


async def test_pushes_are_paced_to_their_cpu_cost_up_to_a_cap() -> None:
    loop = asyncio.get_running_loop()
    cpu = [0.0]
    fired: list[float] = []
    d = Debouncer(0.01, 0.05, lambda: fired.append(loop.time()), cpu=lambda: cpu[0], pace_cap=0.5)
    d.trigger()
    await asyncio.sleep(0.05)
    assert len(fired) == 1  # the first push is never delayed
    cpu[0] += 0.15  # that push cost 0.15 CPU-s: the next may start 0.3 s after it
    d.trigger()
    await asyncio.sleep(0.1)
    assert len(fired) == 1
    await asyncio.sleep(0.3)
    assert len(fired) == 2 and 0.28 <= fired[1] - fired[0] < 0.4
    cpu[0] += 100.0  # absurdly expensive: the wait is capped
    start = loop.time()
    d.trigger()
    await asyncio.sleep(0.8)
    assert len(fired) == 3 and fired[2] - start < 0.7
