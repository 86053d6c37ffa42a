"""Istio-style transparent capture for a pod's network namespace, as `iptables-restore` text.

Pure: what to capture (`CaptureConfig`, from Istio's `traffic.sidecar.istio.io/*` annotations)
and the nat-table rules that do it; agent/captureapply.py loads them into a namespace.

Outbound TCP goes to the proxy's 15001, inbound to 15006; Envoy recovers the original
destination (`SO_ORIGINAL_DST`, the `original_dst` listener filter). The proxy's own UID/GID
(1337) is exempt, so its connections to the real destination are not captured again; its
inbound clusters connect from 127.0.0.6, which is let through on loopback. The order of the
OUTPUT rules is Istio's (tools/istio-iptables):

1. excluded outbound ports RETURN (before the UID rules: they hold for the proxy too);
2. from 127.0.0.6 on `lo`: RETURN (the proxy delivering inbound traffic to the app);
3. to `lo` but not 127.0.0.1, from the proxy: the inbound redirect (the proxy calling its
   own pod through a service address must go through its inbound side);
4. to `lo`, not from the proxy: RETURN (the app talking to itself);
5. from the proxy: RETURN; 6. to 127.0.0.1: RETURN;
7. included outbound ports to the redirect, excluded ranges RETURN, included ranges (all by
   default) to the redirect.

IPv4 only for now (an ip6tables twin is the same text with ::6 and ::1).
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


def iptables_rules(cfg: CaptureConfig) -> str:
    """The nat table for `iptables-restore` (it replaces the namespace's nat table)."""
    tcp = "-p tcp"
    inbound = [
        f"-A SHOAL_INBOUND {tcp} --dport {port} -j RETURN"
        for port in (HBONE_PORT, *ALWAYS_EXCLUDED_INBOUND, *cfg.exclude_inbound_ports)
    ]
    if cfg.include_inbound_ports is None:
        inbound.append(f"-A SHOAL_INBOUND {tcp} -j SHOAL_IN_REDIRECT")
    else:
        inbound += [
            f"-A SHOAL_INBOUND {tcp} --dport {port} -j SHOAL_IN_REDIRECT"
            for port in cfg.include_inbound_ports
        ]
    out = [f"-A SHOAL_OUTPUT {tcp} --dport {port} -j RETURN" for port in cfg.exclude_outbound_ports]
    out.append(f"-A SHOAL_OUTPUT -o lo -s {INBOUND_SOURCE}/32 -j RETURN")
    for kind, ident in (("uid", cfg.proxy_uid), ("gid", cfg.proxy_gid)):
        owner = f"-m owner --{kind}-owner {ident}"
        out += [
            f"-A SHOAL_OUTPUT -o lo ! -d 127.0.0.1/32 {tcp} ! --dport {HBONE_PORT} {owner}"
            " -j SHOAL_IN_REDIRECT",
            f"-A SHOAL_OUTPUT -o lo -m owner ! --{kind}-owner {ident} -j RETURN",
            f"-A SHOAL_OUTPUT {owner} -j RETURN",
        ]
    out.append("-A SHOAL_OUTPUT -d 127.0.0.1/32 -j RETURN")
    out += [
        f"-A SHOAL_OUTPUT {tcp} --dport {port} -j SHOAL_REDIRECT"
        for port in cfg.include_outbound_ports
    ]
    out += [f"-A SHOAL_OUTPUT -d {net} -j RETURN" for net in cfg.exclude_outbound_ranges]
    if cfg.include_outbound_ranges is None:
        out.append("-A SHOAL_OUTPUT -j SHOAL_REDIRECT")
    else:
        out += [
            f"-A SHOAL_OUTPUT -d {net} -j SHOAL_REDIRECT" for net in cfg.include_outbound_ranges
        ]
    lines = [
        "*nat",
        *(f":{chain} - [0:0]" for chain in _CHAINS),
        f"-A PREROUTING {tcp} -j SHOAL_INBOUND",
        f"-A OUTPUT {tcp} -j SHOAL_OUTPUT",
        *inbound,
        f"-A SHOAL_IN_REDIRECT {tcp} -j REDIRECT --to-ports {cfg.inbound_port}",
        f"-A SHOAL_REDIRECT {tcp} -j REDIRECT --to-ports {cfg.outbound_port}",
        *out,
        "COMMIT",
    ]
    return "\n".join(lines) + "\n"


_CHAINS = ("SHOAL_INBOUND", "SHOAL_IN_REDIRECT", "SHOAL_OUTPUT", "SHOAL_REDIRECT")
