"""Istio's resource names, kept identical so `istioctl`-trained eyes read shoal's config."""

from __future__ import annotations

OUTBOUND_ROUTE = "outbound_http"
OUTBOUND_LISTENER = "outbound_http"
INBOUND_LISTENER = "inbound_http"


def outbound_cluster(port: int, subset: str, host: str) -> str:
    """``outbound|PORT|SUBSET|HOST``, SUBSET empty for the whole service."""
    return f"outbound|{port}|{subset}|{host}"


def inbound_cluster(port: int) -> str:
    return f"inbound|{port}||"


def parse_outbound(name: str) -> tuple[int, str, str] | None:
    """Split an outbound cluster name into (port, subset, host), or None if it is not one."""
    parts = name.split("|")
    if len(parts) != 4 or parts[0] != "outbound" or not parts[1].isdigit():
        return None
    return int(parts[1]), parts[2], parts[3]
