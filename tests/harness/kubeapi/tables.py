"""``kubectl get``'s server-side printing: ``meta.k8s.io/v1`` Tables.

kubectl asks with ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io, ...``. A Table
has column definitions and one row per object; each row carries the object as
PartialObjectMetadata (``includeObject=Metadata``, the default), the whole object
(``includeObject=Object``) or nothing (``None``), which is what kubectl reads NAMESPACE and
``--show-labels`` from.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from .resources import ResourceType

Obj = dict[str, Any]


def wants_table(accept: str) -> bool:
    for part in accept.split(","):
        params = {
            p.split("=", 1)[0].strip(): p.split("=", 1)[-1].strip() for p in part.split(";")[1:]
        }
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return True
        if part.split(";")[0].strip() in ("application/json", "*/*"):
            return False
    return False


def human_age(timestamp: str | None) -> str:
    """apimachinery's HumanDuration, as the real server renders the Age column."""
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.UTC
        )
    except ValueError:
        return "<invalid>"
    s = int((datetime.datetime.now(datetime.UTC) - then).total_seconds())
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if d < 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    if d < 730:
        return f"{d}d"
    return f"{d // 365}y"


def _path(obj: Any, path: str) -> Any:
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def columns(rt: ResourceType) -> list[Obj]:
    cols: list[Obj] = [
        {"name": "Name", "type": "string", "format": "name", "priority": 0,
         "description": "Name must be unique within a namespace."},
    ]  # fmt: skip
    for name, type_, _ in rt.columns:
        cols.append({"name": name, "type": type_, "format": "", "priority": 0, "description": ""})
    cols.append(
        {"name": "Age", "type": "string", "format": "", "priority": 0,
         "description": "CreationTimestamp is when this object was created."}
    )  # fmt: skip
    return cols


def row(rt: ResourceType, obj: Obj, include: str) -> Obj:
    meta = obj.get("metadata") or {}
    cells: list[Any] = [meta.get("name", "")]
    for _, _, path in rt.columns:
        v = _path(obj, path)
        if isinstance(v, list | dict):
            # The real server renders JSONPath results that are not scalars as JSON.
            v = json.dumps(v, separators=(",", ":"))
        cells.append("<none>" if v is None else v)
    cells.append(human_age(meta.get("creationTimestamp")))
    out: Obj = {"cells": cells}
    if include == "Object":
        out["object"] = obj
    elif include != "None":
        out["object"] = {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": meta,
        }
    return out


def table(rt: ResourceType, objs: list[Obj], list_meta: Obj, include: str) -> Obj:
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": columns(rt),
        "rows": [row(rt, o, include) for o in objs],
    }
