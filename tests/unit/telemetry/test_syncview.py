"""The dashboard's sync panel rows from /debug/syncz: states, NACK text, lag, order."""

from __future__ import annotations

from typing import Any

from shoal.telemetry.syncview import rows, types_seen


def _proxy(node: str, workload: str, **types: dict[str, Any]) -> dict[str, Any]:
    return {"node": node, "namespace": "default", "workload": workload, "types": types}


SYNCED = {"sent": "v2", "acked": "v2", "nack": None, "last_nack": None, "nacks": 0,
          "lag_ms": 0, "converged_ms": 12.5}  # fmt: skip


def test_states_nack_text_and_lag() -> None:
    syncz = [
        _proxy(
            "sidecar~b",
            "reviews",
            lds={
                **SYNCED,
                "sent": "v3",
                "nack": "listener 'x': bad filter",
                "nacks": 2,
                "last_nack": {"version": "v3", "error": "listener 'x': bad filter", "at": 1},
            },
            cds=SYNCED,
        ),
        _proxy("sidecar~a", "frontend", rds={**SYNCED, "sent": "v3", "lag_ms": 340}, cds=SYNCED),
        _proxy(
            "sidecar~c",
            "ratings",
            cds={**SYNCED, "nacks": 1, "last_nack": {"version": "v1", "error": "old", "at": 0}},
        ),
    ]
    table = rows(syncz)
    assert [r["workload"] for r in table] == ["frontend", "ratings", "reviews"]
    frontend, ratings, reviews = table
    assert frontend["state"] == "pending"
    assert [(t["type"], t["state"], t["lag_ms"]) for t in frontend["types"]] == [
        ("cds", "synced", 0),
        ("rds", "pending", 340),
    ]
    assert reviews["state"] == "nack" and reviews["nacks"] == 2
    lds = reviews["types"][1]
    assert (lds["type"], lds["state"], lds["error"]) == ("lds", "nack", "listener 'x': bad filter")
    # an old NACK, since fixed: synced, with the last error kept as history
    assert ratings["state"] == "synced"
    assert ratings["types"][0]["error"] == "old" and ratings["types"][0]["nacks"] == 1
    assert types_seen(table) == ["cds", "lds", "rds"]


def test_a_proxy_that_subscribed_to_nothing_yet_is_synced_with_no_types() -> None:
    (row,) = rows([_proxy("sidecar~a", "frontend")])
    assert (row["state"], row["types"], row["nacks"]) == ("synced", [], 0)
