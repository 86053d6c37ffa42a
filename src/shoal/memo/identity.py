"""`IdentityMemo`: values keyed by the identity of one or more objects, kept alive with them.

Keying by identity is what makes a memo cheap when the inputs are large immutable objects that
keep their identity while unchanged (the store hands back the same parsed resource for an
unchanged document; the generator the same map for an unchanged scope): no hashing or equality
of a whole ServiceEntry. The key objects are held by the entry, so an id is never reused by
another object while the entry exists.

Two lifetimes, chosen per memo:

* ``rotate()`` (generations): an entry survives a build only if that build, or the one before,
  asked for it. A plain id-keyed memo kept every superseded input alive until a size bound:
  under steady churn the heap grew by each edit's old objects (~5 MB per 100 edits at 1,000
  services; the old `model/carryover.py`).
* ``size=N``: at most N entries, the least recently used dropped first (per-map-pair answers
  that any stream may ask again, where no build boundary is known).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")
_Entry = tuple[tuple[object, ...], V]


class IdentityMemo(Generic[V]):
    def __init__(self, size: int | None = None) -> None:
        self._size = size
        # (ids of the key objects) -> (the key objects, kept alive so ids stay theirs; value)
        self._now: OrderedDict[tuple[int, ...], _Entry[V]] = OrderedDict()
        self._before: dict[tuple[int, ...], _Entry[V]] = {}
        self.hits = 0
        self.misses = 0

    def rotate(self) -> None:
        """A new build starts: what neither it nor the previous one asks for is dropped."""
        self._before, self._now = self._now, OrderedDict()

    def get(self, keys: tuple[object, ...], make: Callable[[], V]) -> V:
        ident = tuple(map(id, keys))
        found = self._now.get(ident)
        if found is not None:
            self.hits += 1
            if self._size is not None:
                self._now.move_to_end(ident)
            return found[1]
        found = self._before.get(ident)
        if found is None:
            self.misses += 1
            found = (keys, make())
        else:
            self.hits += 1
        self._now[ident] = found
        if self._size is not None and len(self._now) > self._size:
            self._now.popitem(last=False)
        return found[1]

    def __len__(self) -> int:
        return len(self._now.keys() | self._before.keys())
