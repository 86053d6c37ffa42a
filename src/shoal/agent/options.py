"""The agent's options file (`--options-file`): what may change while the agent runs.

A YAML (or JSON) mapping; every key is optional and overrides the command line:

    xdsAddress: 10.0.0.5:15010,10.0.0.6:15010   # control-plane replicas
    apiType: DELTA_GRPC                         # or GRPC
    envoy: /opt/envoy-1.40/bin/envoy            # the Envoy binary
    bootstrapOverride:                          # merged into the generated bootstrap
      stats_flush_interval: 10s

A change to the file (or to the binary it names) hot-restarts Envoy onto the new bootstrap.
A file that does not parse, or a key with a bad value, is refused with its file, line and key,
and the running Envoy is left as it is.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

KEYS = ("xdsAddress", "apiType", "envoy", "bootstrapOverride")
API_TYPES = ("GRPC", "DELTA_GRPC")


class OptionsError(ValueError):
    """An options file that cannot be used; the message names file, line and key."""


@dataclass(frozen=True)
class AgentOptions:
    xds: tuple[tuple[str, int], ...] = ()  # empty: the command line's
    api_type: str | None = None
    envoy: str | None = None
    bootstrap_override: Mapping[str, Any] = field(default_factory=dict)


def parse_addresses(text: str) -> tuple[tuple[str, int], ...]:
    """`h1:p1,h2:p2` -> ((h1, p1), (h2, p2)); ValueError naming the bad part."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        host, sep, port = part.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{part!r} is not host:port")
        out.append((host.strip("[]") or "127.0.0.1", int(port)))
    if not out:
        raise ValueError("no address")
    return tuple(out)


def _lines(node: yaml.Node) -> dict[str, int]:
    """Key -> 1-based line of each top-level key of a mapping node."""
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): k.start_mark.line + 1 for k, _ in node.value}


def load_options(path: Path) -> AgentOptions:
    try:
        text = path.read_text()
    except OSError as err:
        raise OptionsError(f"{path}: cannot read: {err.strerror or err}") from err
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise OptionsError(f"{where}: not YAML: {getattr(err, 'problem', None) or err}") from err
    if data is None:
        return AgentOptions()
    if not isinstance(data, dict):
        raise OptionsError(f"{path}:1: the options file must be a mapping of {', '.join(KEYS)}")
    lines = _lines(node) if node is not None else {}

    def bad(key: str, why: str) -> OptionsError:
        return OptionsError(f"{path}:{lines.get(key, 1)}: {key}: {why}")

    for key in data:
        if key not in KEYS:
            raise bad(str(key), f"unknown key (known: {', '.join(KEYS)})")
    xds: tuple[tuple[str, int], ...] = ()
    if "xdsAddress" in data:
        if not isinstance(data["xdsAddress"], str):
            raise bad("xdsAddress", "must be a string host:port[,host:port...]")
        try:
            xds = parse_addresses(data["xdsAddress"])
        except ValueError as err:
            raise bad("xdsAddress", str(err)) from err
    api_type = data.get("apiType")
    if api_type is not None and api_type not in API_TYPES:
        raise bad("apiType", f"{api_type!r} is not one of {', '.join(API_TYPES)}")
    envoy = data.get("envoy")
    if envoy is not None:
        if not isinstance(envoy, str) or not envoy:
            raise bad("envoy", "must be the path of an Envoy binary")
        if not Path(envoy).is_file():
            raise bad("envoy", f"{envoy} is not a file")
    override = data.get("bootstrapOverride") or {}
    if not isinstance(override, dict):
        raise bad("bootstrapOverride", "must be a mapping (fields of an Envoy Bootstrap)")
    return AgentOptions(xds, api_type, envoy, override)


def merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `override` merged in: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
