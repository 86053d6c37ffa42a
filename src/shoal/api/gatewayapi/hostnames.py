"""Hostname intersection of a listener and a route (Gateway API "hostname matching")."""

from __future__ import annotations

from collections.abc import Sequence


def _covers(wildcard: str, host: str) -> bool:
    # `*.example.com` covers `a.example.com` and `a.b.example.com`, not `example.com`
    return wildcard.startswith("*.") and host.endswith(wildcard[1:]) and host != wildcard[2:]


def intersect(listener: str | None, route: Sequence[str]) -> list[str]:
    """The hosts a route serves on a listener: `["*"]` for any, `[]` when none match."""
    if not route:
        return [listener or "*"]
    if listener is None:
        return sorted(set(route))
    out: set[str] = set()
    for host in route:
        if host == listener or _covers(listener, host):
            out.add(host)
        elif _covers(host, listener):
            out.add(listener)
    return sorted(out)
