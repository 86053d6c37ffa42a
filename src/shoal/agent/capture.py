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

from shoal.common.capturecfg import (
    ALL,
    ALWAYS_EXCLUDED_INBOUND,
    ANNOTATION,
    HBONE_PORT,
    INBOUND_CAPTURE_PORT,
    INBOUND_SOURCE,
    OUTBOUND_CAPTURE_PORT,
    PROXY_UID,
    CaptureConfig,
    CaptureError,
    from_annotations,
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


__all__ = [
    "ALL",
    "ALWAYS_EXCLUDED_INBOUND",
    "ANNOTATION",
    "HBONE_PORT",
    "INBOUND_CAPTURE_PORT",
    "INBOUND_SOURCE",
    "OUTBOUND_CAPTURE_PORT",
    "PROXY_UID",
    "CaptureConfig",
    "CaptureError",
    "from_annotations",
    "iptables_rules",
]
