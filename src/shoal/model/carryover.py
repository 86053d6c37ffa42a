"""A memo keyed by object identity that keeps only what the last build used.

Snapshot building reuses the objects it made for inputs that did not change (the store hands
back the same parsed objects for unchanged files). A plain id-keyed memo would also keep every
superseded input alive until some size bound: under steady churn the heap grew by each edit's
old objects (~5 MB per 100 edits at 1,000 services). Here an entry survives a build only if
that build asked for it; `rotate` at the start of each build drops the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class CarryOver(Generic[V]):
    def __init__(self) -> None:
        # (ids of the key objects) -> (the key objects, kept alive so ids stay theirs; value)
        self._now: dict[tuple[int, ...], tuple[tuple[object, ...], V]] = {}
        self._before: dict[tuple[int, ...], tuple[tuple[object, ...], V]] = {}

    def rotate(self) -> None:
        """A new build starts: what the previous one did not use is dropped."""
        self._before, self._now = self._now, {}

    def get(self, keys: tuple[object, ...], make: Callable[[], V]) -> V:
        ident = tuple(map(id, keys))
        found = self._now.get(ident) or self._before.get(ident)
        if found is None:
            found = (keys, make())
        self._now[ident] = found
        return found[1]

    def __len__(self) -> int:
        return len(self._now.keys() | self._before.keys())
