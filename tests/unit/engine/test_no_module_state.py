"""No module-level mutable state anywhere in shoal.

A memo in a module global is shared by every builder in the process: two pipelines (a test
beside a control plane, `shoal analyze` in a test) rotate away each other's entries, and what
one build leaves there changes what the next computes from. State across snapshots is owned
by what builds (`engine.Pipeline`'s `SnapshotMemo`, a `ConfigGenerator`), made with
`shoal.memo`. This test imports every module of those layers and checks each name a module
binds at its top level (by its source: assignments and definitions, not imports): only
values that cannot change are allowed (numbers, strings, tuples and frozensets of such,
read-only mappings, frozen dataclasses, enums, classes, functions without a cache, durations,
paths). Tables that are written into output (manifests, bootstraps) are read-only mappings
copied where used, or functions returning a fresh dict.
"""

from __future__ import annotations

import ast
import ctypes
import dataclasses
import datetime
import enum
import functools
import importlib
import inspect
import logging
import pathlib
import pkgutil
import re
import types
import typing
from collections.abc import Iterator

import pytest

from shoal.generate.resourceset import ResourceSet

# every package of src (the pure layers, the engine and xds, and everything above them)
LAYERS = ("shoal",)

_IMMUTABLE = (
    int,
    float,
    complex,
    str,
    bytes,
    bool,
    type(None),
    range,
    re.Pattern,
    types.MappingProxyType,
    type,
    enum.Enum,
    typing.TypeVar,
    logging.Logger,  # configured by the process, holds no data of a build
    ctypes.CDLL,  # the process's libc (prctl, setns): a handle, no data of a build
    datetime.timedelta,
    pathlib.PurePath,
    ResourceSet,  # a dict that refuses every change (and caches only its own digest)
)
_CONTAINERS = (tuple, frozenset)


def why_mutable(value: object) -> str | None:
    """None when `value` cannot change, else what it is."""
    if isinstance(value, functools._lru_cache_wrapper):
        return "a function with a cache"
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType)):
        return None
    if type(value) is object:
        return None  # a sentinel: nothing in it to change
    if isinstance(value, _CONTAINERS):
        return next((w for v in value if (w := why_mutable(v)) is not None), None)
    if isinstance(value, types.MappingProxyType):
        return next((w for v in value.values() if (w := why_mutable(v)) is not None), None)
    if isinstance(value, _IMMUTABLE):
        return None
    if dataclasses.is_dataclass(value) and value.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        return None
    if type(value).__module__ in ("typing", "types", "__future__", "enum", "collections.abc"):
        return None  # type aliases, unions, generic aliases, `annotations`
    if type(value).__module__.startswith("google.protobuf") and not hasattr(value, "ListFields"):
        return None  # protobuf enum wrappers (a message has ListFields and is mutable)
    return f"a {type(value).__qualname__}"


def bound_names(module: types.ModuleType) -> Iterator[str]:
    """The names the module's own top-level statements bind (not its imports)."""
    tree = ast.parse(inspect.getsource(module))
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node.name
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                yield from (n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
            yield node.target.id


def modules() -> Iterator[str]:
    for layer in LAYERS:
        package = importlib.import_module(layer)
        yield layer
        for info in pkgutil.walk_packages(package.__path__, layer + "."):
            yield info.name


@pytest.mark.parametrize("name", list(modules()))
def test_a_module_holds_nothing_mutable_at_its_top_level(name: str) -> None:
    module = importlib.import_module(name)
    found = {
        attr: why
        for attr in set(bound_names(module))
        if attr in vars(module)
        and attr != "__all__"
        and (why := why_mutable(vars(module)[attr])) is not None
    }
    assert not found, f"{name}: module-level mutable state {found}"


def test_the_scan_sees_what_it_is_for() -> None:
    """The checks themselves: a cache, a dict, a list, a message are all caught."""
    from envoy.config.cluster.v3 import cluster_pb2

    @functools.lru_cache
    def cached() -> int:
        return 1

    assert why_mutable(cached) is not None
    assert why_mutable({}) is not None
    assert why_mutable(([],)) is not None
    assert why_mutable(types.MappingProxyType({"a": []})) is not None
    assert why_mutable(cluster_pb2.Cluster()) is not None
    assert why_mutable(types.MappingProxyType({"a": (1, "b")})) is None
    assert why_mutable(cluster_pb2.Cluster.ROUND_ROBIN) is None
    assert why_mutable(pathlib.Path("/tmp")) is None


def test_the_scan_covers_every_package_of_src() -> None:
    scanned = set(modules())
    for package in ("shoal.api", "shoal.agent", "shoal.cli", "shoal.controlplane", "shoal.kube"):
        assert package in scanned
