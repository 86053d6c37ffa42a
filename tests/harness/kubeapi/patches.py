"""PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge (subset).

Strategic merge patch is what kubectl apply sends for built-in kinds. The subset here follows
apimachinery's rules where it matters for apply: maps merge recursively, ``null`` deletes,
lists of objects merge by their patch merge key for the well-known fields (``containers`` by
``name``, ``ports`` by ``containerPort``/``port``, ...), other lists are replaced, and the
directives kubectl emits (``$patch: delete|replace``, ``$setElementOrder/<field>``,
``$deleteFromPrimitiveList/<field>``, ``$retainKeys``) are honoured.
"""

from __future__ import annotations

from typing import Any

from .errors import ApiError
from .objects import clone

# Field name -> merge key, for lists the Kubernetes types mark patchStrategy=merge.
_MERGE_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "volumes": ("name",),
    "env": ("name",),
    "imagePullSecrets": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "hostAliases": ("ip",),
    "conditions": ("type",),
    "topologySpreadConstraints": ("topologyKey",),
    "resourceClaims": ("name",),
    # Container ports merge by containerPort, Service ports by port.
    "ports": ("containerPort", "port"),
    "ownerReferences": ("uid",),
}
# Lists of scalars marked patchStrategy=merge: union, not replace.
_MERGE_SCALAR_LISTS = frozenset({"finalizers"})


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return clone(patch)
    out = clone(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError.bad_request(f"JSON pointer {path!r} must start with /")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str], path: str) -> Any:
    cur = doc
    for p in parts:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            raise ApiError.invalid(f"the server rejected our request: path {path!r} does not exist")
    return cur


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902; a failed op or test is a 422 like the real server's."""
    if not isinstance(ops, list):
        raise ApiError.bad_request("json patch must be a list of operations")
    doc = clone(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise ApiError.bad_request(f"invalid json patch operation: {op!r}")
        kind, path = op["op"], op["path"]
        if kind in ("move", "copy"):
            value = clone(_walk(doc, _pointer(op["from"]), op["from"]))
            if kind == "move":
                doc = _remove(doc, op["from"])
            doc = _add(doc, path, value)
        elif kind == "add":
            doc = _add(doc, path, clone(op.get("value")))
        elif kind == "remove":
            doc = _remove(doc, path)
        elif kind == "replace":
            _walk(doc, _pointer(path), path)
            doc = _remove(doc, path)
            doc = _add(doc, path, clone(op.get("value")))
        elif kind == "test":
            if _walk(doc, _pointer(path), path) != op.get("value"):
                raise ApiError.invalid(f"the server rejected our request: test failed at {path!r}")
        else:
            raise ApiError.bad_request(f"unknown json patch operation {kind!r}")
    return doc


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise ApiError.invalid(f"the server rejected our request: bad index in {path!r}")
    else:
        raise ApiError.invalid(f"the server rejected our request: cannot add at {path!r}")
    return doc


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        del parent[int(last)]
    else:
        raise ApiError.invalid(f"the server rejected our request: path {path!r} does not exist")
    return doc


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """The subset described in the module docstring."""
    if not isinstance(patch, dict):
        raise ApiError.bad_request("strategic merge patch must be a JSON object")
    return _smp_map(clone(target) if isinstance(target, dict) else {}, patch)


def _smp_map(out: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: v for k, v in clone(patch).items() if k != "$patch"}
    if directive == "delete":
        return {}
    retain = patch.get("$retainKeys")
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys") or k.startswith("$setElementOrder/"):
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            if isinstance(out.get(field), list):
                out[field] = [x for x in out[field] if x not in v]
            continue
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict):
            cur = out.get(k)
            merged = _smp_map(cur if isinstance(cur, dict) else {}, v)
            out[k] = merged
        elif isinstance(v, list):
            out[k] = _smp_list(k, out.get(k), v, patch.get(f"$setElementOrder/{k}"))
        else:
            out[k] = clone(v)
    if isinstance(retain, list):
        for k in list(out):
            if k not in retain:
                del out[k]
    return out


def _merge_key(field: str, items: list[Any]) -> str | None:
    keys = _MERGE_KEYS.get(field)
    if not keys or not items or not all(isinstance(i, dict) for i in items):
        return None
    for key in keys:
        if all(key in i or i.get("$patch") == "replace" for i in items):
            return key
    return None


def _smp_list(field: str, current: Any, patch: list[Any], order: Any) -> list[Any]:
    cur = current if isinstance(current, list) else []
    if field in _MERGE_SCALAR_LISTS and all(not isinstance(i, dict | list) for i in patch):
        return cur + [x for x in patch if x not in cur]
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [clone(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    key = _merge_key(field, [i for i in patch if not (isinstance(i, dict) and "$patch" in i)])
    if key is None or not all(isinstance(i, dict) and key in i for i in cur):
        return [clone(i) for i in patch]
    merged: list[dict[str, Any]] = [clone(i) for i in cur]
    for item in patch:
        idx = next((n for n, m in enumerate(merged) if m.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                del merged[idx]
        elif idx is None:
            merged.append(_smp_map({}, item))
        else:
            merged[idx] = _smp_map(merged[idx], item)
    if isinstance(order, list):
        pos = {(o.get(key) if isinstance(o, dict) else o): n for n, o in enumerate(order)}
        merged.sort(key=lambda m: pos.get(m.get(key), len(pos)))
    return merged


PATCH_TYPES = {
    "application/merge-patch+json": merge_patch,
    "application/json-patch+json": json_patch,
    "application/strategic-merge-patch+json": strategic_merge_patch,
}


def apply_patch(content_type: str, target: dict[str, Any], patch: Any, crd: bool) -> Any:
    """Dispatch on Content-Type; 415 for apply-patch and for strategic merge on custom kinds."""
    media = content_type.split(";", maxsplit=1)[0].strip().lower()
    fn = PATCH_TYPES.get(media)
    if fn is None or (crd and fn is strategic_merge_patch):
        # Custom resources have no strategic merge schema; the real server says 415 too.
        raise ApiError.unsupported_media(media)
    return fn(target, patch)
