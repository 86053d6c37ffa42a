"""Per-pod overrides of the injected sidecar, from Istio's pod annotations.

- `proxy.istio.io/config` (a ProxyConfig in YAML or JSON): `concurrency` (Envoy worker
  threads), `terminationDrainDuration` (how long the agent drains Envoy on shutdown) and
  `holdApplicationUntilProxyStarts` (whether the app's containers wait for the agent); other
  fields are valid Istio that shoal's agent does not act on, so they produce a warning;
- `sidecar.istio.io/proxyCPU`, `proxyMemory`, `proxyCPULimit`, `proxyMemoryLimit`: the
  container's resources (Istio's defaults otherwise: 100m CPU, 128Mi memory requested);
- `sidecar.istio.io/logLevel`: Envoy's log level;
- `status.sidecar.istio.io/port`: the health port (0: no health endpoint, no readiness probe).

A value that cannot be used is ignored with a warning naming the annotation and why, rather
than failing the pod's creation (the webhook's failurePolicy is Fail: a refusal would block
the workload).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import yaml

from shoal.api.duration import parse_duration

PROXY_CONFIG = "proxy.istio.io/config"
LOG_LEVEL = "sidecar.istio.io/logLevel"
STATUS_PORT = "status.sidecar.istio.io/port"
_RESOURCES = MappingProxyType(
    {
        "sidecar.istio.io/proxyCPU": ("requests", "cpu"),
        "sidecar.istio.io/proxyMemory": ("requests", "memory"),
        "sidecar.istio.io/proxyCPULimit": ("limits", "cpu"),
        "sidecar.istio.io/proxyMemoryLimit": ("limits", "memory"),
    }
)
DEFAULT_REQUESTS = MappingProxyType({"cpu": "100m", "memory": "128Mi"})
_LOG_LEVELS = frozenset({"trace", "debug", "info", "warning", "warn", "error", "critical", "off"})


@dataclass(frozen=True)
class Overrides:
    agent_args: tuple[str, ...] = ()
    resources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    health_port: int | None = None  # None: the injector's; 0: none
    hold_application: bool | None = None  # None: the injector's
    warnings: tuple[str, ...] = ()


def _proxy_config(raw: str, args: list[str], warnings: list[str]) -> bool | None:
    """The agent arguments `raw` asks for (into `args`) and its holdApplicationUntilProxyStarts."""
    hold: bool | None = None
    try:
        config: Any = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        warnings.append(f"{PROXY_CONFIG} is not YAML ({err.__class__.__name__}); ignored")
        return None
    if not isinstance(config, dict):
        warnings.append(f"{PROXY_CONFIG} must be a map of ProxyConfig fields; ignored")
        return None
    for key, value in config.items():
        if key == "holdApplicationUntilProxyStarts":
            if isinstance(value, bool):
                hold = value
            else:
                warnings.append(
                    f"{PROXY_CONFIG} holdApplicationUntilProxyStarts must be true or false; ignored"
                )
        elif key == "concurrency":
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                args += ["--concurrency", str(value)]
            else:
                warnings.append(f"{PROXY_CONFIG} concurrency must be a positive integer; ignored")
        elif key == "terminationDrainDuration":
            try:
                args += ["--drain-seconds", f"{parse_duration(str(value)):g}"]
            except ValueError as err:
                warnings.append(f"{PROXY_CONFIG} terminationDrainDuration: {err}; ignored")
        else:
            warnings.append(f"{PROXY_CONFIG} field {key!r} is not supported by shoal; ignored")
    return hold


def overrides(annotations: Mapping[str, str]) -> Overrides:
    """The overrides a pod's annotations ask for (see the module docstring)."""
    args: list[str] = []
    warnings: list[str] = []
    hold = None
    if PROXY_CONFIG in annotations:
        hold = _proxy_config(annotations[PROXY_CONFIG], args, warnings)
    level = annotations.get(LOG_LEVEL, "").lower()
    if level:
        if level in _LOG_LEVELS:
            args += ["--envoy-log-level", "warning" if level == "warn" else level]
        else:
            warnings.append(f"{LOG_LEVEL}={level!r} is not an Envoy log level; ignored")
    resources: dict[str, dict[str, str]] = {"requests": dict(DEFAULT_REQUESTS)}
    for key, (kind, name) in _RESOURCES.items():
        if annotations.get(key):
            resources.setdefault(kind, {})[name] = annotations[key]
    health: int | None = None
    raw_port = annotations.get(STATUS_PORT)
    if raw_port is not None:
        if raw_port.isdigit() and int(raw_port) < 65536:
            health = int(raw_port)
        else:
            warnings.append(f"{STATUS_PORT}={raw_port!r} is not a port number; ignored")
    return Overrides(
        agent_args=tuple(args),
        resources=resources,
        health_port=health,
        hold_application=hold,
        warnings=tuple(warnings),
    )
