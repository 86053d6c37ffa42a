"""JSON of stored objects, encoded once per object version and form.

A list of 10,000 pods or a watch replaying them would otherwise re-encode every object on
every request; informer cold-sync benchmarks would then measure the fake. Stored objects
never change once committed, so (type, namespace, name, resourceVersion, form) names one
encoding for good.
"""

from __future__ import annotations

import json
from typing import Any

Obj = dict[str, Any]
BARE = ""  # built-in list items: no kind/apiVersion, as the real typed encoders write them


class Encodings:
    def __init__(self) -> None:
        self._cache: dict[tuple[tuple[str, str], str, str, str], tuple[str, bytes]] = {}

    def encode(self, key: tuple[str, str], obj: Obj, form: str) -> bytes:
        """``form``: BARE, or the apiVersion to write (a CRD's objects are served at each of
        its versions)."""
        meta = obj.get("metadata") or {}
        rv = str(meta.get("resourceVersion", ""))
        ck = (key, str(meta.get("namespace") or ""), str(meta.get("name") or ""), form)
        hit = self._cache.get(ck)
        if hit is not None and hit[0] == rv and rv:
            return hit[1]
        if form == BARE:
            view = {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
        elif obj.get("apiVersion") != form:
            view = {**obj, "apiVersion": form}
        else:
            view = obj
        data = json.dumps(view, separators=(",", ":")).encode()
        self._cache[ck] = (rv, data)
        return data

    def forget(self, key: tuple[str, str]) -> None:
        for ck in [ck for ck in self._cache if ck[0] == key]:
            del self._cache[ck]
