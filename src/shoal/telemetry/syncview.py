"""The dashboard's sync panel: `/debug/syncz` (one entry per proxy, per xDS type what was sent,
ACKed and NACKed) turned into one row per proxy with a state per type.

A type is `nack` while its last answer was a NACK (the Envoy error text beside it), `pending`
while the proxy has not ACKed what it was sent (with the lag: ms it has gone without config it
should have), else `synced`. A proxy's state is its worst type's. Types appear in xDS order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

ORDER = ("cds", "eds", "lds", "rds", "sds")  # as /debug/syncz names them
_RANK = MappingProxyType({"synced": 0, "pending": 1, "nack": 2})


def _type_state(st: Mapping[str, Any]) -> str:
    if st.get("nack"):
        return "nack"
    if st.get("sent") != st.get("acked") or st.get("lag_ms"):
        return "pending"
    return "synced"


def _order(kind: str) -> tuple[int, str]:
    return (ORDER.index(kind) if kind in ORDER else len(ORDER), kind)


def rows(syncz: Iterable[Mapping[str, Any]]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for proxy in syncz:
        types = []
        for kind in sorted(proxy.get("types") or {}, key=_order):
            st = proxy["types"][kind]
            last = st.get("last_nack") or {}
            types.append(
                {
                    "type": kind,
                    "state": _type_state(st),
                    "sent": st.get("sent"),
                    "acked": st.get("acked"),
                    "nacks": st.get("nacks") or 0,
                    # the current NACK's Envoy text, else the last one's (history, dimmed)
                    "error": st.get("nack") or last.get("error"),
                    "lag_ms": st.get("lag_ms") or 0,
                    "converged_ms": st.get("converged_ms"),
                }
            )
        worst = max((t["state"] for t in types), key=lambda s: _RANK[str(s)], default="synced")
        out.append(
            {
                "node": proxy.get("node"),
                "namespace": proxy.get("namespace"),
                "workload": proxy.get("workload"),
                "state": worst,
                "nacks": sum(int(str(t["nacks"])) for t in types),
                "types": types,
            }
        )
    return sorted(out, key=lambda r: (str(r["namespace"]), str(r["workload"]), str(r["node"])))


def types_seen(table: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every xDS type any proxy subscribed to, in xDS order (the panel's columns)."""
    return sorted({t["type"] for row in table for t in row["types"]}, key=_order)
