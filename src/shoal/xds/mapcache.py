"""Work on a whole resource map done once, however many streams hold that map.

Snapshots share map objects between proxies and, for unchanged types, between snapshots
(generate/reuse.py). What a stream needs to know about a map — its content digest, how it
differs from the map the proxy holds, its encoded response body — is therefore computed once
per map (or pair of maps) and looked up by identity. Each cache keeps the maps it describes
alive, so an id is never reused while its entry exists, and holds only a few recent entries
(`shoal.memo.Memo` with a size bound). The memos are a `MapMemos` the server owns and
hands every stream (a stream made alone gets its own).
"""

from __future__ import annotations

from collections.abc import Mapping

from shoal.generate import PreparedResource
from shoal.generate.resourceset import ResourceSet, content_digest
from shoal.memo import Memo

ResourceMap = Mapping[str, PreparedResource]


def digest(content: ResourceMap) -> str:
    """A short hash of the names and versions in `content` (its version on the wire). The
    snapshot's shared maps are `ResourceSet`s and keep their own; a map built for one stream
    is hashed each time."""
    if isinstance(content, ResourceSet):
        return content.digest()
    return content_digest(content)


def _diff(old: ResourceMap, new: ResourceMap) -> tuple[frozenset[str], frozenset[str]]:
    changed = frozenset(
        n for n, r in new.items() if (o := old.get(n)) is None or o.version != r.version
    )
    return changed, frozenset(old.keys() - new.keys())


def refs(content: ResourceMap) -> frozenset[str]:
    """The cluster names `content`'s resources refer to."""
    if isinstance(content, ResourceSet):
        return content.refs()
    return frozenset().union(*(r.refs for r in content.values()))


def names(content: ResourceMap) -> frozenset[str]:
    """The names in `content` (a shared map's own set when it is a `ResourceSet`)."""
    return content.names() if isinstance(content, ResourceSet) else frozenset(content)


class MapMemos:
    """What streams learn about pairs of shared maps, once for all of them (one per server)."""

    def __init__(self, size: int = 256) -> None:
        self._diffs: Memo[tuple[frozenset[str], frozenset[str]]] = Memo(size)
        self._covers: Memo[bool] = Memo(size)
        self._uncovered: Memo[frozenset[str]] = Memo(size)

    def diff(
        self, old: ResourceMap, new: ResourceMap, *, shared: bool = True
    ) -> tuple[frozenset[str], frozenset[str]]:
        """(names new or changed in `new`, names gone from `old`); `shared=False` when either map
        was built for one stream (not worth a cache entry)."""
        if old is new:
            return frozenset(), frozenset()
        if not shared:
            return _diff(old, new)
        return self._diffs.get((old, new), lambda: _diff(old, new))

    def covers(self, clusters: ResourceMap, target: ResourceMap, refs: frozenset[str]) -> bool:
        """Whether `clusters` holds every name in `refs` (the clusters `target` routes to); once
        per pair of shared maps, since every stream of a scope asks about the same two."""
        if isinstance(clusters, ResourceSet) and isinstance(target, ResourceSet):
            return self._covers.get((clusters, target), lambda: refs <= clusters.keys())
        return refs <= clusters.keys()

    def uncovered(self, content: ResourceMap, target: ResourceMap) -> frozenset[str]:
        """Cluster names `content` refers to that `target` lacks: once per pair of shared maps,
        since every stream of a scope holds the same routes and is sent the same clusters."""
        named = refs(content)
        if not named:
            return named  # a listener naming no cluster: most of them, each a stream's own map

        def make() -> frozenset[str]:
            # (not `named - target.keys()`: that first copies all of target's keys into a set)
            return frozenset(n for n in named if n not in target)

        if isinstance(content, ResourceSet) and isinstance(target, ResourceSet):
            return self._uncovered.get((content, target), make)
        return make()
