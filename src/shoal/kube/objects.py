"""Typed reads of Kubernetes objects in their JSON form (plain dicts from the API's wire).

A field that is absent, null or of the wrong type reads as its empty value: the API server
validated the object already, so a missing field means "not set", never an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

KubeObject = Mapping[str, Any]


def _is_mapping(obj: object) -> TypeGuard[Mapping[str, Any]]:
    # JSON from the wire is plain dicts: the exact type check first, since an ABC check
    # (Mapping) costs ~1 us, paid for every field of 10,000 pods at a cold sync
    return type(obj) is dict or isinstance(obj, Mapping)


def mapping(obj: object, *keys: str) -> Mapping[str, Any]:
    """The mapping at `obj[keys[0]][keys[1]]...`, or an empty one."""
    for key in keys:
        obj = obj.get(key) if _is_mapping(obj) else None
    return obj if _is_mapping(obj) else {}


def items(obj: object, *keys: str) -> Sequence[Any]:
    """The list at `obj[keys...]`, or an empty one."""
    *head, last = keys
    value = mapping(obj, *head).get(last)
    return value if isinstance(value, list) else ()


def text(obj: object, *keys: str, default: str = "") -> str:
    """The string at `obj[keys...]`, or `default`."""
    *head, last = keys
    value = mapping(obj, *head).get(last)
    return value if isinstance(value, str) else default


def flag(obj: object, *keys: str) -> bool | None:
    """The boolean at `obj[keys...]`, or None when unset (Kubernetes' `*bool`)."""
    *head, last = keys
    value = mapping(obj, *head).get(last)
    return value if isinstance(value, bool) else None


def number(obj: object, *keys: str) -> int | None:
    """The integer at `obj[keys...]`, or None."""
    *head, last = keys
    value = mapping(obj, *head).get(last)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def string_map(obj: object, *keys: str) -> dict[str, str]:
    """A map of strings (labels, annotations, selectors) at `obj[keys...]`."""
    return {str(k): str(v) for k, v in mapping(obj, *keys).items() if isinstance(v, str)}


def name_of(obj: KubeObject) -> str:
    return text(obj, "metadata", "name")


def namespace_of(obj: KubeObject) -> str:
    return text(obj, "metadata", "namespace", default="default") or "default"


def labels_of(obj: KubeObject) -> dict[str, str]:
    return string_map(obj, "metadata", "labels")


def annotations_of(obj: KubeObject) -> dict[str, str]:
    return string_map(obj, "metadata", "annotations")
