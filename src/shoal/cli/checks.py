"""Warnings for `shoal analyze`: configuration that is valid but probably not what was meant.

This is the hook for "classic mistake" checks (a VirtualService for a host nothing
defines, a DestinationRule whose subsets no route uses, ...). Each check takes the accepted
resources and returns `ConfigError`s (built with `Resource.error` so they carry file, line
and field); `analyze` prints them as warnings, which never change its exit status.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from shoal.api import ConfigError, Resource
from shoal.cli import routechecks

Check = Callable[[Sequence[Resource]], list[ConfigError]]

# Add checks here; each must be pure and cheap (analyze runs them all on every call).
CHECKS: list[Check] = [
    routechecks.subsets_without_workloads,
    routechecks.timeouts_shorter_than_retries,
]


def find_warnings(resources: Sequence[Resource]) -> list[ConfigError]:
    """Every warning every check finds in `resources`, sorted by file and line."""
    found: list[ConfigError] = []
    for check in CHECKS:
        found += check(resources)
    return sorted(set(found))
