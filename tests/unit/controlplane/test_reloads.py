"""Debouncing: bursts become one push, a trickle still pushes by the maximum wait, and pushes
wait for the previous fan-out (never beyond a cap)."""

from __future__ import annotations

import asyncio

from shoal.controlplane.reloads import Debouncer


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


async def test_a_push_waits_for_the_previous_fan_out_up_to_a_cap() -> None:
    loop = asyncio.get_running_loop()
    busy = [False]
    fired: list[float] = []
    d = Debouncer(0.01, 0.05, lambda: fired.append(loop.time()), busy=lambda: busy[0], pace_cap=0.5)
    d.trigger()
    await asyncio.sleep(0.05)
    assert len(fired) == 1  # nothing on its way: no wait
    busy[0] = True  # that push is still reaching proxies
    d.trigger()
    await asyncio.sleep(0.15)
    assert len(fired) == 1
    busy[0] = False
    await asyncio.sleep(0.05)
    assert len(fired) == 2  # started once the fan-out was done
    busy[0] = True  # never done (a stuck fleet): the wait is capped
    start = loop.time()
    d.trigger()
    await asyncio.sleep(0.8)
    assert len(fired) == 3 and 0.5 <= fired[2] - start < 0.7
