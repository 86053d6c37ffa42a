"""Turns pydantic validation errors into ConfigErrors a user can act on.

Pydantic knows the field path (in YAML's camelCase names) but not the file or line,
and reports every unexpected key as "Extra inputs are not permitted". Here each error
gets its line from the document's Origin, and an unexpected key is told apart: an Istio
field shoal has not implemented yet, or a typo with the closest known field suggested.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from shoal.api.base import FIELD_ERROR_TYPE
from shoal.api.errors import ConfigError, render_path
from shoal.api.resource import Origin, Path
from shoal.api.unimplemented import is_not_implemented

_SCALARS = (str, int, float, bool, type(None))


def _unwrap(tp: Any) -> Any:
    """Strip Annotated and Optional so what is left is the type that holds the value."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(tp) if a is not type(None)]
            if len(members) != 1:
                return tp
            tp = members[0]
        else:
            return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _field_type(model: type[BaseModel], name: str) -> Any:
    for field_name, info in model.model_fields.items():
        if name in (field_name, info.alias):
            return info.annotation
    return None


def model_at(root: type[BaseModel], path: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class found at `path` below `root`, following fields, lists and dicts."""
    tp: Any = root
    for part in path:
        tp = _unwrap(tp)
        origin = get_origin(tp)
        if _is_model(tp) and isinstance(part, str):
            tp = _field_type(tp, part)
        elif origin in (list, tuple) and isinstance(part, int):
            tp = get_args(tp)[0]
        elif origin is dict:
            tp = get_args(tp)[1]
        else:
            return None
    tp = _unwrap(tp)
    return tp if _is_model(tp) else None


def known_fields(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def unknown_field_message(key: str, known: Sequence[str]) -> str:
    """Say `key` is unknown, suggesting the closest of `known` (case slips included)."""
    by_lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if key.lower() in by_lower:
        close = [by_lower[key.lower()]]
    if close:
        return f"unknown field {key!r} (did you mean {close[0]!r}?)"
    return f"unknown field {key!r}; expected one of {', '.join(sorted(known))}"


def extra_field_message(model: type[BaseModel] | None, key: str) -> str:
    if model is None:
        return f"unknown field {key!r}"
    if is_not_implemented(model, key):
        api = "a Gateway API" if model.__module__.startswith("shoal.api.gatewayapi") else "an Istio"
        return f"{key!r} is {api} field that shoal does not implement yet"
    return unknown_field_message(key, known_fields(model))


def _sub_path(text: str) -> Path:
    return tuple(int(p) if p.isdigit() else p for p in text.split(".") if p)


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    msg = error["msg"]
    if kind == "missing":
        return "required field is missing"
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    value = error.get("input")
    # Type and choice errors are clearer with the offending value shown.
    if (kind.endswith("_type") or kind.endswith("_parsing") or kind == "literal_error") and (
        isinstance(value, _SCALARS)
    ):
        msg = f"{msg} (got {value!r})"
    return msg


def translate(
    exc: ValidationError,
    model: type[BaseModel],
    prefix: Path,
    origin: Origin,
    *,
    kind: str = "",
    name: str = "",
) -> list[ConfigError]:
    """One ConfigError per pydantic error; `prefix` is where `model` sits in the document."""
    errors = []
    for error in exc.errors():
        loc: Path = tuple(error["loc"])
        if loc and loc[-1] == "[key]":  # pydantic's marker for a bad dict key: the key is the field
            loc = loc[:-1]
        if error["type"] == "extra_forbidden" and loc and isinstance(loc[-1], str):
            message = extra_field_message(model_at(model, loc[:-1]), loc[-1])
        else:
            message = _message(error)
        ctx = error.get("ctx") or {}
        if error["type"] == FIELD_ERROR_TYPE and isinstance(ctx.get(FIELD_ERROR_TYPE), str):
            loc += _sub_path(ctx[FIELD_ERROR_TYPE])
        path = prefix + loc
        errors.append(
            ConfigError(
                file=origin.file,
                line=origin.line_of(path),
                field=render_path(path),
                message=message,
                kind=kind,
                name=name,
            )
        )
    return errors
