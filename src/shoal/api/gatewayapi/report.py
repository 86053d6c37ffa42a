"""Gateway API status as lines a person reads (`shoal analyze`): one per route parent and
one per Gateway, located at the resource, e.g.

    routes.yaml:12: status: HTTPRoute default/shop: parent Gateway default/edge:
        Accepted=True (Accepted), ResolvedRefs=True (ResolvedRefs)
"""

from __future__ import annotations

from collections.abc import Iterable

from shoal.api.errors import ConfigError
from shoal.api.gatewayapi.attach import Condition, GatewayApiStatus
from shoal.api.resource import Resource


def _conditions(conditions: Iterable[Condition]) -> str:
    return ", ".join(f"{c.type}={c.status} ({c.reason})" for c in conditions)


def status_lines(resources: Iterable[Resource], status: GatewayApiStatus) -> list[ConfigError]:
    """A located line per Gateway (with its listeners' attached routes) and route parent."""
    by_key = {r.key: r for r in resources}
    out: list[ConfigError] = []
    for key, gw in sorted(status.gateways.items()):
        res = by_key.get(key)
        if res is None:
            continue
        listeners = ", ".join(
            f"{name}: {n} route{'s' if n != 1 else ''}" for name, n in gw.attached.items()
        )
        text = _conditions(gw.conditions) + (f"; listeners {listeners}" if listeners else "")
        out.append(res.error(("metadata", "name"), text))
    for key, route in sorted(status.routes.items()):
        res = by_key.get(key)
        if res is None:
            continue
        for i, parent in enumerate(route.parents):
            where = parent.ref.describe(res.meta.namespace)
            out.append(
                res.error(
                    ("spec", "parentRefs", i), f"parent {where}: {_conditions(parent.conditions)}"
                )
            )
    return out
