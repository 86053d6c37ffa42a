"""Bounded push concurrency: large responses share a byte budget; a stuck stream's share
comes back by itself; small responses never wait."""

from __future__ import annotations

import asyncio

from shoal.xds.pushbudget import PushBudget

MB = 1024 * 1024


async def test_large_responses_wait_for_budget_in_order() -> None:
    budget = PushBudget(3 * MB, stuck_after=60)
    a = await budget.acquire(2 * MB)
    order: list[str] = []

    async def take(name: str, size: int) -> None:
        grant = await budget.acquire(size)
        order.append(name)
        await asyncio.sleep(0.01)
        budget.release(grant)

    b = asyncio.create_task(take("b", 2 * MB))
    c = asyncio.create_task(take("c", 1 * MB))  # would fit now, but b came first
    await asyncio.sleep(0.01)
    assert order == [] and budget.waiting == 2
    small = await budget.acquire(1024)  # small ones pass whatever is waiting
    budget.release(small)
    budget.release(a)
    await asyncio.gather(b, c)
    assert order == ["b", "c"]
    assert budget.in_flight == 0


async def test_one_response_larger_than_the_budget_still_goes_alone() -> None:
    budget = PushBudget(1 * MB, stuck_after=60)
    grant = await asyncio.wait_for(budget.acquire(5 * MB), 1)
    assert budget.in_flight == 5 * MB
    budget.release(grant)
    budget.release(grant)  # twice is harmless
    assert budget.in_flight == 0


async def test_a_stuck_stream_gives_its_share_back() -> None:
    budget = PushBudget(1 * MB, stuck_after=0.05)
    await budget.acquire(1 * MB)  # never released: the proxy stopped reading
    other = await asyncio.wait_for(budget.acquire(1 * MB), 1)
    budget.release(other)
    assert budget.in_flight == 0


async def test_a_waiter_that_goes_away_leaves_nothing_behind() -> None:
    budget = PushBudget(1 * MB, stuck_after=60)
    held = await budget.acquire(1 * MB)
    waiter = asyncio.create_task(budget.acquire(1 * MB))
    await asyncio.sleep(0.01)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    budget.release(held)
    assert budget.in_flight == 0 and budget.waiting == 0
