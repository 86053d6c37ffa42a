"""RFC 6902 JSON Patch from one JSON document to another, for the injection webhook.

Pure and small: maps are diffed key by key (remove, add, recurse), a list that only grew at
its end gets `add .../-` for each new item, lists of equal length are diffed item by item, and
anything else is replaced. No move/copy detection: the injector only adds, so the patch stays
as direct as the change (a general-purpose differ spent ~4 ms per pod looking for moves).
Equality is strict about JSON types (`true` is not `1`).
"""

from __future__ import annotations

from typing import Any

Operation = dict[str, Any]


def _token(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def same(a: object, b: object) -> bool:
    """JSON equality: like `==`, but a boolean never equals a number."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def diff(before: object, after: object, path: str = "") -> list[Operation]:
    """The operations that turn `before` into `after` (both JSON values)."""
    if isinstance(before, dict) and isinstance(after, dict):
        ops: list[Operation] = [
            {"op": "remove", "path": f"{path}/{_token(k)}"} for k in before if k not in after
        ]
        for key, value in after.items():
            where = f"{path}/{_token(key)}"
            if key not in before:
                ops.append({"op": "add", "path": where, "value": value})
            else:
                ops += diff(before[key], value, where)
        return ops
    if isinstance(before, list) and isinstance(after, list):
        n = len(before)
        if len(after) > n and same(before, after[:n]):
            return [{"op": "add", "path": f"{path}/-", "value": v} for v in after[n:]]
        if len(after) == n:
            out: list[Operation] = []
            for i, (x, y) in enumerate(zip(before, after, strict=True)):
                out += diff(x, y, f"{path}/{i}")
            return out
    if same(before, after):
        return []
    return [{"op": "replace", "path": path, "value": after}]
