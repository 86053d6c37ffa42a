"""`ResourceSet`: an immutable name -> `PreparedResource` map that knows its own digest.

One map object is shared by every proxy that should hold the same resources, and by
consecutive snapshots when nothing in it changed. What describes a whole map — its digest,
the version a state-of-the-world response carries — is therefore computed once and kept with
the map for as long as the map lives, however many maps there are (a per-proxy listener map
each, at a thousand proxies, would overflow any small cache keyed by identity).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import NoReturn

from shoal.generate.prepared import PreparedResource


def _by_name(resource: PreparedResource) -> str:
    return resource.name


class ResourceSet(dict[str, PreparedResource]):
    """Resources by name, in name order. Never changed after it is made: streams compare
    maps by identity and cache what they learned about one."""

    __slots__ = ("_digest", "_eds_names", "_names", "_refs")

    @classmethod
    def of(cls, resources: Iterable[PreparedResource]) -> ResourceSet:
        return cls((r.name, r) for r in sorted(resources, key=_by_name))

    def digest(self) -> str:
        """A short hash of the names and versions held (stable: equal content, equal digest)."""
        try:
            return self._digest
        except AttributeError:
            self._digest: str = content_digest(self)
            return self._digest

    def names(self) -> frozenset[str]:
        """The names held, as one frozenset shared by everyone who asks: a thousand streams
        subscribed to exactly these names hold this one object, not a thousand copies."""
        try:
            return self._names
        except AttributeError:
            self._names: frozenset[str] = frozenset(self)
            return self._names

    def refs(self) -> frozenset[str]:
        """Every cluster the resources held name (listeners, routes; see PreparedResource)."""
        try:
            return self._refs
        except AttributeError:
            self._refs: frozenset[str] = frozenset().union(*(r.refs for r in self.values()))
            return self._refs

    def eds_names(self) -> frozenset[str]:
        """The clusters held that take their endpoints from EDS."""
        try:
            return self._eds_names
        except AttributeError:
            self._eds_names: frozenset[str] = frozenset(n for n, r in self.items() if r.uses_eds)
            return self._eds_names

    def share_names(self, earlier: ResourceSet) -> None:
        """Use `earlier`'s names object if it holds the same names (a map rebuilt because
        one resource changed): streams then see "same subscription" by identity."""
        known = getattr(earlier, "_names", None)
        if known is not None and len(known) == len(self) and known.issuperset(self):
            self._names = known

    def _immutable(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("a ResourceSet is shared and never changed; build a new one")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _immutable
    __ior__ = _immutable


def content_digest(content: Mapping[str, PreparedResource]) -> str:
    """The names and versions of `content`, hashed in name order."""
    h = hashlib.blake2b(digest_size=6)
    for name in sorted(content):
        h.update(name.encode())
        h.update(b"\0")
        h.update(content[name].version.encode())
        h.update(b"\n")
    return h.hexdigest()
