"""The ``/scale`` subresource (autoscaling/v1 Scale) of Deployments, ReplicaSets and CRDs
that declare ``subresources.scale``: what ``kubectl scale`` reads and patches."""

from __future__ import annotations

from typing import Any

from .objects import clone
from .resources import ResourceType

Obj = dict[str, Any]


def _get(obj: Obj, path: str) -> Any:
    cur: Any = obj
    for part in path.strip(".").split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _selector(rt: ResourceType, obj: Obj) -> str:
    assert rt.scale is not None
    if rt.scale[2]:
        return str(_get(obj, rt.scale[2]) or "")
    # Built-ins: the string form of spec.selector (matchLabels only, as most are written).
    labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def to_scale(rt: ResourceType, obj: Obj) -> Obj:
    assert rt.scale is not None
    meta = obj.get("metadata") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                          "creationTimestamp") if k in meta},
        "spec": {"replicas": int(_get(obj, rt.scale[0]) or 0)},
        "status": {"replicas": int(_get(obj, rt.scale[1]) or 0), "selector": _selector(rt, obj)},
    }  # fmt: skip


def with_replicas(rt: ResourceType, obj: Obj, replicas: int) -> Obj:
    assert rt.scale is not None
    out = clone(obj)
    parts = rt.scale[0].strip(".").split(".")
    cur = out
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = replicas
    return out
