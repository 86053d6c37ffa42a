"""The fake API server's state: objects, one global resourceVersion, a history ring, watchers.

Everything here runs on the server's event loop thread and never awaits, so a write, its
history entry and its fan-out to watchers happen as one step, and a watch that replays history
and then subscribes cannot miss an event in between.

Stored objects are never mutated once committed (writes build new dicts), so reads and watch
events can share them without copying.

History is one global ring of write events. A watch or a paged list from a resourceVersion
older than the ring's floor gets 410 Expired, as etcd compaction does on the real server; a
list at an older resourceVersion (``continue``, ``resourceVersionMatch=Exact``) is rebuilt by
undoing the ring's events, so pages are a consistent snapshot.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import ApiError
from .resources import Registry, ResourceType

Key = tuple[str, str]  # (group, plural)
ObjKey = tuple[str, str]  # (namespace or "", name)
Obj = dict[str, Any]


@dataclass(frozen=True)
class Change:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    key: Key
    obj: Obj  # the object after the change; for DELETED its last state at the delete's RV
    prev: Obj | None  # the object before, None for ADDED


class Sink(Protocol):
    """Where a watcher's events go (watch.py's streams)."""

    def deliver(self, type_: str, obj: Obj) -> None: ...


@dataclass(eq=False)
class Watcher:
    rt: ResourceType
    namespace: str | None
    matches: Callable[[Obj], bool]
    sink: Sink
    label: str = field(default="")

    def offer(self, change: Change) -> None:
        """Translate a change to what this watcher sees, as the real watch cache does: an
        object that stops matching the selectors is DELETED, one that starts is ADDED."""
        if self.namespace is not None and _ns(change.obj) != self.namespace:
            return
        now = change.type != "DELETED" and self.matches(change.obj)
        before = change.prev is not None and self.matches(change.prev)
        if change.type == "DELETED":
            if self.matches(change.obj):
                self.sink.deliver("DELETED", change.obj)
        elif now and before:
            self.sink.deliver("MODIFIED", change.obj)
        elif now:
            self.sink.deliver("ADDED", change.obj)
        elif before:
            self.sink.deliver("DELETED", change.obj)


def _ns(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def obj_rv(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def with_rv(obj: Obj, rv: int) -> Obj:
    meta = dict(obj.get("metadata") or {})
    meta["resourceVersion"] = str(rv)
    out = dict(obj)
    out["metadata"] = meta
    return out


def encode_continue(rv: int, after: ObjKey) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": list(after)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, ObjKey]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        return int(data["rv"]), (str(data["start"][0]), str(data["start"][1]))
    except (ValueError, KeyError, IndexError, TypeError, binascii.Error):
        raise ApiError.bad_request("continue key is not valid: bad token") from None


class Store:
    def __init__(self, registry: Registry, history_size: int = 10_000) -> None:
        self.registry = registry
        self.rv = 1
        self._objects: dict[Key, dict[ObjKey, Obj]] = {}
        self._ring: deque[Change] = deque()
        self.history_size = history_size
        # Every change with rv > floor is in the ring.
        self.floor = self.rv
        self._watchers: set[Watcher] = set()
        self._sorted: dict[Key, list[ObjKey]] = {}  # each bucket's keys, sorted, until they change
        # Called after every committed change (admission, namespace reaping, CRD registration).
        self.listeners: list[Callable[[Change], None]] = []

    # -- reads ------------------------------------------------------------------------------

    def bucket(self, key: Key) -> dict[ObjKey, Obj]:
        return self._objects.setdefault(key, {})

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        obj = self.bucket(rt.key).get((namespace if rt.namespaced else "", name))
        if obj is None:
            raise ApiError.not_found(rt.group, rt.plural, name)
        return obj

    def find(self, rt: ResourceType, namespace: str, name: str) -> Obj | None:
        return self.bucket(rt.key).get((namespace if rt.namespaced else "", name))

    def items(self, key: Key) -> Iterator[Obj]:
        return iter(list(self.bucket(key).values()))

    def snapshot(self, key: Key, rv: int | None) -> dict[ObjKey, Obj]:
        """The objects of one type as they were at ``rv`` (None: now)."""
        current = self.bucket(key)
        if rv is None or rv >= self.rv:
            return current
        if rv < self.floor:
            raise ApiError.expired(
                f"The resourceVersion for the provided list is too old ({rv} < {self.floor})."
            )
        out = dict(current)
        for change in reversed(self._ring):
            if change.rv <= rv:
                break
            if change.key != key:
                continue
            k = (_ns(change.obj), _name(change.obj))
            if change.prev is None:
                out.pop(k, None)
            else:
                out[k] = change.prev
        return out

    def list(
        self,
        rt: ResourceType,
        namespace: str | None,
        matches: Callable[[Obj], bool],
        *,
        limit: int = 0,
        cont: str = "",
        resource_version: str = "",
        match: str = "",
        selective: bool = False,
    ) -> tuple[list[Obj], Obj]:
        """A page of matching objects and its ListMeta."""
        at: int | None = None
        after: ObjKey | None = None
        if cont:
            at, after = decode_continue(cont)
            if at < self.floor:
                raise ApiError.expired(
                    "The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter."
                )
        elif resource_version and match == "Exact":
            at = _parse_rv(resource_version)
        elif resource_version not in ("", "0") and _parse_rv(resource_version) > self.rv:
            raise ApiError.timeout(
                f"Too large resource version: {resource_version}, current: {self.rv}"
            )
        snap = self.snapshot(rt.key, at)
        list_rv = at if at is not None else self.rv
        keys = self._sorted_keys(rt.key) if snap is self.bucket(rt.key) else sorted(snap)
        # Keys sort by (namespace, name), as etcd's do: a namespace is one contiguous run.
        lo = 0 if namespace is None else bisect.bisect_left(keys, (namespace, ""))
        end = len(keys) if namespace is None else bisect.bisect_left(keys, (namespace + "\x00", ""))
        if after is not None:
            lo = max(lo, bisect.bisect_right(keys, after))
        out: list[Obj] = []
        meta: Obj = {"resourceVersion": str(list_rv)}
        for n in range(lo, end):
            obj = snap[keys[n]]
            if not matches(obj):
                continue
            if limit and len(out) == limit:
                last = out[-1]["metadata"]
                meta["continue"] = encode_continue(
                    list_rv, (last.get("namespace") or "", last["name"])
                )
                if not selective:  # the real server leaves it out when selectors filter
                    meta["remainingItemCount"] = end - n
                break
            out.append(obj)
        return out, meta

    def _sorted_keys(self, key: Key) -> list[ObjKey]:
        cached = self._sorted.get(key)
        if cached is None:
            cached = self._sorted[key] = sorted(self.bucket(key))
        return cached

    # -- writes -----------------------------------------------------------------------------

    def _commit(self, change_type: str, rt: ResourceType, obj: Obj, prev: Obj | None) -> Obj:
        self.rv += 1
        stored = with_rv(obj, self.rv)
        k = (_ns(stored) if rt.namespaced else "", _name(stored))
        bucket = self.bucket(rt.key)
        if change_type == "DELETED" or k not in bucket:
            self._sorted.pop(rt.key, None)  # the set of keys changes
        if change_type == "DELETED":
            bucket.pop(k, None)
        else:
            bucket[k] = stored
        change = Change(self.rv, change_type, rt.key, stored, prev)
        self._ring.append(change)
        while len(self._ring) > self.history_size:
            self.floor = self._ring.popleft().rv
        for w in list(self._watchers):
            if w.rt.key == rt.key:
                w.offer(change)
        for listener in list(self.listeners):
            listener(change)
        return stored

    def create(self, rt: ResourceType, obj: Obj) -> Obj:
        k = (_ns(obj) if rt.namespaced else "", _name(obj))
        if k in self.bucket(rt.key):
            raise ApiError.already_exists(rt.group, rt.plural, k[1])
        return self._commit("ADDED", rt, obj, None)

    def update(self, rt: ResourceType, obj: Obj, expect_rv: str | None) -> Obj:
        """Replace; ``expect_rv`` (when given) must be the stored object's RV, else 409."""
        k = (_ns(obj) if rt.namespaced else "", _name(obj))
        prev = self.bucket(rt.key).get(k)
        if prev is None:
            raise ApiError.not_found(rt.group, rt.plural, k[1])
        if expect_rv and expect_rv != obj_rv(prev):
            raise ApiError.stale(rt.group, rt.plural, k[1])
        return self._commit("MODIFIED", rt, obj, prev)

    def remove(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        k = (namespace if rt.namespaced else "", name)
        prev = self.bucket(rt.key).get(k)
        if prev is None:
            raise ApiError.not_found(rt.group, rt.plural, name)
        return self._commit("DELETED", rt, prev, prev)

    def drop_type(self, key: Key) -> list[Obj]:
        """Forget every object of a type (its CRD went away), emitting DELETED for each."""
        gone = []
        for rt in self.registry.by_key(key)[:1]:
            for obj in list(self.bucket(key).values()):
                gone.append(self.remove(rt, _ns(obj), _name(obj)))
        return gone

    # -- watch ------------------------------------------------------------------------------

    def subscribe(self, w: Watcher, since: int | None) -> None:
        """Replay changes after ``since`` (None: the current objects as ADDED), then follow.

        Raises 410 Expired when ``since`` fell off the ring."""
        if since is None:
            for k in sorted(self.bucket(w.rt.key)):
                obj = self.bucket(w.rt.key)[k]
                if (w.namespace is None or k[0] == w.namespace) and w.matches(obj):
                    w.sink.deliver("ADDED", obj)
        else:
            if since < self.floor:
                raise ApiError.expired(f"too old resource version: {since} ({self.floor})")
            for change in self._ring:
                if change.rv > since and change.key == w.rt.key:
                    w.offer(change)
        self._watchers.add(w)

    def unsubscribe(self, w: Watcher) -> None:
        self._watchers.discard(w)

    def watchers(self) -> list[Watcher]:
        return list(self._watchers)

    def compact(self) -> None:
        """Forget all history: every watch or continue from an older RV gets 410."""
        self._ring.clear()
        self.floor = self.rv

    def set_history_size(self, n: int) -> None:
        self.history_size = max(0, n)
        while len(self._ring) > self.history_size:
            self.floor = self._ring.popleft().rv


def _parse_rv(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ApiError.bad_request(f"invalid resource version: {text!r}") from None


def parse_rv(text: str) -> int:
    return _parse_rv(text)
