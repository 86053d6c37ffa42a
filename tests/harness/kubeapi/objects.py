"""Copying JSON objects: the server's hot path copies on every write (stored objects are
never mutated), and ``copy.deepcopy`` (memo, reduce protocol) costs several times this."""

from __future__ import annotations

from typing import Any


def clone(value: Any) -> Any:
    """A deep copy of a JSON value (dicts, lists, scalars)."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value
