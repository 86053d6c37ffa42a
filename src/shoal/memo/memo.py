"""`Memo`: values keyed by the objects they were made from, kept alive with them.

Keyed by identity (the default) a memo is cheap when the inputs are large immutable objects
that keep their identity while unchanged (the store hands back the same parsed resource for an
unchanged document; the generator the same map for an unchanged scope): no hashing or equality
of a whole ServiceEntry. The key objects are held by the entry, so an id is never reused by
another object while the entry exists. Keyed by value (``identity=False``) where the key is
small and made afresh each time (a virtual host's service, port, domains, VirtualService).

Two lifetimes, chosen per memo:

* generations: an entry survives a build only if that build, or the one before, asked for it.
  ``rotate()`` starts the next generation in place (a builder that lives on: the snapshot
  memo); ``successor()`` makes the next generation's memo and leaves this one as it was (a
  generator whose successor takes over from it). A plain id-keyed memo kept every superseded
  input alive until a size bound: under steady churn the heap grew by each edit's old objects
  (~5 MB per 100 edits at 1,000 services; the old `model/carryover.py`).
* ``size=N``: at most N entries, the least recently used dropped first (per-map-pair answers
  that any stream may ask again, where no build boundary is known).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Generic, TypeVar

V = TypeVar("V")
_Entry = tuple[tuple[object, ...], V]


class Memo(Generic[V]):
    def __init__(self, size: int | None = None, *, identity: bool = True) -> None:
        self._size = size
        self._identity = identity
        # key (ids of the key objects, or the keys) -> (the key objects, kept alive; value)
        self._now: OrderedDict[Hashable, _Entry[V]] = OrderedDict()
        self._before: Mapping[Hashable, _Entry[V]] = {}
        self.hits = 0
        self.misses = 0

    def rotate(self) -> None:
        """A new build starts: what neither it nor the previous one asks for is dropped."""
        self._before, self._now = self._now, OrderedDict()

    def successor(self) -> Memo[V]:
        """The next generation's memo: it finds what this one holds and keeps only what it is
        asked for. This memo is left as it is."""
        out: Memo[V] = Memo(self._size, identity=self._identity)
        out._before = self._now
        return out

    def _key(self, keys: tuple[object, ...]) -> Hashable:
        return tuple(map(id, keys)) if self._identity else keys

    def get(self, keys: tuple[object, ...], make: Callable[[], V]) -> V:
        key = self._key(keys)
        found = self._now.get(key)
        if found is not None:
            self.hits += 1
            if self._size is not None:
                self._now.move_to_end(key)
            return found[1]
        found = self._before.get(key)
        if found is None:
            self.misses += 1
            found = (keys, make())
        else:
            self.hits += 1
        self._now[key] = found
        if self._size is not None and len(self._now) > self._size:
            self._now.popitem(last=False)
        return found[1]

    def current(self) -> dict[tuple[object, ...], V]:
        """What this generation asked for: key objects -> value."""
        return dict(self._now.values())

    def __len__(self) -> int:
        return len(self._now.keys() | self._before.keys())
