"""Informer retry delays: doubling, capped, jittered within [d/2, d]."""

from __future__ import annotations

from shoal.kube.backoff import Backoff


def test_delays_double_up_to_the_cap_and_stay_within_the_jitter_band() -> None:
    ceilings: list[float] = []

    def rand(low: float, high: float) -> float:
        assert low == high / 2
        ceilings.append(high)
        return low

    backoff = Backoff(0.5, 4.0, rand=rand)
    delays = [backoff.next_delay() for _ in range(6)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert delays == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    backoff.reset()
    assert backoff.next_delay() == 0.25


def test_real_jitter_spreads_retries() -> None:
    delays = {Backoff(1.0, 1.0).next_delay() for _ in range(20)}
    assert len(delays) > 1
    assert all(0.5 <= d <= 1.0 for d in delays)
