"""Istio's `traffic.sidecar.istio.io/*` pod annotations as a `CaptureConfig` (pure).

Shared by agent/capture.py (the iptables rules made from it) and the config validation of
LocalWorkload (a bad annotation is refused at load time with its file and line).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

PROXY_UID = 1337
OUTBOUND_CAPTURE_PORT = 15001
INBOUND_CAPTURE_PORT = 15006
HBONE_PORT = 15008
INBOUND_SOURCE = "127.0.0.6"
# never captured inbound, so the kubelet and Prometheus reach them directly (Istio's list)
ALWAYS_EXCLUDED_INBOUND = (15020, 15021, 15090)

ANNOTATION = "traffic.sidecar.istio.io/"
_KEYS = (
    "includeInboundPorts",
    "excludeInboundPorts",
    "includeOutboundIPRanges",
    "excludeOutboundIPRanges",
    "includeOutboundPorts",
    "excludeOutboundPorts",
)

ALL = "*"


class CaptureError(ValueError):
    """A capture setting that cannot be used; names the annotation and the bad value."""


@dataclass(frozen=True)
class CaptureConfig:
    proxy_uid: int = PROXY_UID
    proxy_gid: int = PROXY_UID
    outbound_port: int = OUTBOUND_CAPTURE_PORT
    inbound_port: int = INBOUND_CAPTURE_PORT
    include_inbound_ports: tuple[int, ...] | None = None  # None: all ("*")
    exclude_inbound_ports: tuple[int, ...] = ()
    include_outbound_ranges: tuple[str, ...] | None = None  # None: all ("*")
    exclude_outbound_ranges: tuple[str, ...] = ()
    include_outbound_ports: tuple[int, ...] = ()
    exclude_outbound_ports: tuple[int, ...] = ()


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _ports(key: str, value: str) -> tuple[int, ...]:
    out = []
    for item in _split(value):
        if not item.isdigit() or not 0 < int(item) < 65536:
            raise CaptureError(f"{ANNOTATION}{key}: {item!r} is not a port (1-65535)")
        out.append(int(item))
    return tuple(out)


def _ranges(key: str, value: str) -> tuple[str, ...]:
    out = []
    for item in _split(value):
        try:
            net = ipaddress.ip_network(item, strict=False)
        except ValueError as err:
            raise CaptureError(f"{ANNOTATION}{key}: {item!r} is not a CIDR: {err}") from err
        if net.version != 4:
            raise CaptureError(f"{ANNOTATION}{key}: {item!r}: IPv6 capture is not implemented yet")
        out.append(str(net))
    return tuple(out)


def from_annotations(
    annotations: Mapping[str, str], *, proxy_uid: int = PROXY_UID
) -> CaptureConfig:
    """The capture Istio's `traffic.sidecar.istio.io/*` pod annotations ask for."""
    values = {k[len(ANNOTATION) :]: v for k, v in annotations.items() if k.startswith(ANNOTATION)}
    for key in values:
        if key not in _KEYS and key != "interceptionMode":
            raise CaptureError(f"{ANNOTATION}{key}: not supported (known: {', '.join(_KEYS)})")
    mode = values.get("interceptionMode", "REDIRECT")
    if mode != "REDIRECT":
        raise CaptureError(f"{ANNOTATION}interceptionMode: {mode!r}: only REDIRECT is implemented")
    inbound = values.get("includeInboundPorts", ALL).strip()
    outbound = values.get("includeOutboundIPRanges", ALL).strip()
    return CaptureConfig(
        proxy_uid=proxy_uid,
        proxy_gid=proxy_uid,
        include_inbound_ports=None if inbound == ALL else _ports("includeInboundPorts", inbound),
        exclude_inbound_ports=_ports("excludeInboundPorts", values.get("excludeInboundPorts", "")),
        include_outbound_ranges=None
        if outbound == ALL
        else _ranges("includeOutboundIPRanges", outbound),
        exclude_outbound_ranges=_ranges(
            "excludeOutboundIPRanges", values.get("excludeOutboundIPRanges", "")
        ),
        include_outbound_ports=_ports(
            "includeOutboundPorts", values.get("includeOutboundPorts", "")
        ),
        exclude_outbound_ports=_ports(
            "excludeOutboundPorts", values.get("excludeOutboundPorts", "")
        ),
    )
