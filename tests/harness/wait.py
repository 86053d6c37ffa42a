"""Polling with a monotonic deadline: the harness never sleeps a fixed long time.

Tests wait for an observable condition (a stat, a syncz entry, a backend answering) and fail
with a message that says what was last seen, instead of sleeping "long enough".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A condition did not become true before its deadline."""


def wait_until(
    probe: Callable[[], T | None],
    timeout: float,
    *,
    interval: float = 0.05,
    what: str = "condition",
    describe: Callable[[], str] | None = None,
) -> T:
    """Call ``probe`` until it returns a truthy value and return that value.

    Exceptions from ``probe`` count as "not yet" (a peer that is still starting refuses
    connections); the last one is reported if the deadline passes. ``describe`` adds context
    (e.g. the last syncz answer or a log tail) to the failure message.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    last_value: object = None
    while True:
        try:
            value = probe()
        except Exception as exc:
            last_error = exc
        else:
            if value:
                return value
            last_value = value
        if time.monotonic() >= deadline:
            detail = f"last error: {last_error!r}" if last_error else f"last value: {last_value!r}"
            extra = f"\n{describe()}" if describe else ""
            raise WaitTimeout(f"timed out after {timeout:.1f}s waiting for {what}; {detail}{extra}")
        time.sleep(interval)


def stays_true(predicate: Callable[[], bool], duration: float, *, interval: float = 0.1) -> bool:
    """Return True if ``predicate`` holds at every poll for ``duration`` seconds."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        if not predicate():
            return False
        time.sleep(interval)
    return predicate()
