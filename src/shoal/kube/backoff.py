"""Retry delays for the informers: exponential, capped, with jitter.

After an API server outage every replica's every informer retries; without jitter they would
all come back at the same instants and hit the server together. Each delay is drawn from
[d/2, d] ("equal jitter") with d doubling from `initial_s` up to `max_s`.
"""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    def __init__(
        self,
        initial_s: float = 0.5,
        max_s: float = 30.0,
        rand: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.failures = 0
        self._rand = rand

    def next_delay(self) -> float:
        """The delay before the next attempt, counting one more failure."""
        ceiling = min(self.max_s, self.initial_s * 2.0 ** min(self.failures, 30))
        self.failures += 1
        return self._rand(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0


def jittered(
    low: float, high: float, rand: Callable[[float, float], float] = random.uniform
) -> float:
    """A value in [low, high]: watch timeouts spread so watches do not all end together."""
    return rand(low, high)
