"""The informer's memory of one resource type, sans I/O: list and watch events in, changes out.

The rules of the list/watch protocol that decide what the mesh sees live here, in one class
with no sockets (as h11 keeps HTTP's rules away from its I/O), so a test can feed it any
sequence of lists and events:

* A LIST replaces everything: `replace(items, rv)` compares the new list with what is held and
  emits ADDED/MODIFIED for what is new or changed and DELETED for what vanished. This is how a
  relist after `410 Gone` (the watch fell off the server's history) still tells the mesh about
  objects deleted while it was not watching; a watch restarted without a resourceVersion
  would only send synthetic ADDED events and lose those deletions.
* Watch events move the resourceVersion (RV) on, BOOKMARK included (a bookmark carries only
  `metadata.resourceVersion`). An event whose object has the RV already held is a replay and
  changes nothing, so a watch resumed from an older RV is harmless.
* Secondary indexes (EndpointSlices by `kubernetes.io/service-name`, ...) follow every change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

KubeObject = Mapping[str, Any]
# (namespace, name); namespace "" for cluster-scoped kinds (Namespace)
ObjectKey = tuple[str, str]
EventType = Literal["ADDED", "MODIFIED", "DELETED"]
# an index maps an object to the values it is found under (e.g. its Service's key)
IndexFunc = Callable[[KubeObject], Iterable[str]]


@dataclass(frozen=True)
class ObjectEvent:
    """One change of one object, with what was held before (`old`) and after (`new`)."""

    type: EventType
    key: ObjectKey
    old: KubeObject | None
    new: KubeObject | None

    @property
    def current(self) -> KubeObject:
        """The object after the change, or the last one held for a deletion."""
        obj = self.new if self.new is not None else self.old
        assert obj is not None
        return obj


def _meta(obj: KubeObject) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def object_key(obj: KubeObject) -> ObjectKey:
    meta = _meta(obj)
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def resource_version(obj: KubeObject) -> str:
    return str(_meta(obj).get("resourceVersion") or "")


class WatchCache:
    """Objects of one type by key, the RV to resume from, and secondary indexes."""

    def __init__(self, indexes: Mapping[str, IndexFunc] | None = None) -> None:
        self.objects: dict[ObjectKey, KubeObject] = {}
        self.resource_version: str | None = None
        self._index_funcs = dict(indexes or {})
        self._indexes: dict[str, dict[str, set[ObjectKey]]] = {n: {} for n in self._index_funcs}

    # ------------------------------------------------------------------ reads
    def get(self, key: ObjectKey) -> KubeObject | None:
        return self.objects.get(key)

    def by_index(self, index: str, value: str) -> list[KubeObject]:
        """The objects index `index` files under `value`, in key order."""
        keys = self._indexes[index].get(value, ())
        return [self.objects[k] for k in sorted(keys)]

    def __len__(self) -> int:
        return len(self.objects)

    # ------------------------------------------------------------------ writes
    def replace(self, items: Iterable[KubeObject], rv: str) -> list[ObjectEvent]:
        """A complete LIST at `rv`: the changes that turn what is held into exactly `items`."""
        seen: dict[ObjectKey, KubeObject] = {}
        for obj in items:
            seen[object_key(obj)] = obj
        events: list[ObjectEvent] = []
        for key in sorted(self.objects.keys() - seen.keys()):
            events.append(self._delete(key))
        for key, obj in seen.items():
            event = self._upsert(key, obj)
            if event is not None:
                events.append(event)
        self.resource_version = rv
        return events

    def apply(self, event_type: str, obj: KubeObject) -> ObjectEvent | None:
        """One watch event (ADDED, MODIFIED, DELETED or BOOKMARK); None if nothing changed."""
        rv = resource_version(obj)
        if rv:
            self.resource_version = rv
        if event_type == "BOOKMARK":
            return None
        key = object_key(obj)
        if event_type == "DELETED":
            return self._delete(key) if key in self.objects else None
        if event_type in ("ADDED", "MODIFIED"):
            return self._upsert(key, obj)
        raise ValueError(f"unknown watch event type {event_type!r}")

    def _upsert(self, key: ObjectKey, obj: KubeObject) -> ObjectEvent | None:
        old = self.objects.get(key)
        if old is not None:
            rv = resource_version(obj)
            if (rv and rv == resource_version(old)) or old == obj:
                return None  # a replay of what is held
        self._unindex(key, old)
        self.objects[key] = obj
        self._index(key, obj)
        return ObjectEvent("ADDED" if old is None else "MODIFIED", key, old, obj)

    def _delete(self, key: ObjectKey) -> ObjectEvent:
        old = self.objects.pop(key)
        self._unindex(key, old)
        return ObjectEvent("DELETED", key, old, None)

    def _index(self, key: ObjectKey, obj: KubeObject) -> None:
        for name, func in self._index_funcs.items():
            index = self._indexes[name]
            for value in func(obj):
                index.setdefault(value, set()).add(key)

    def _unindex(self, key: ObjectKey, obj: KubeObject | None) -> None:
        if obj is None:
            return
        for name, func in self._index_funcs.items():
            index = self._indexes[name]
            for value in func(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]
