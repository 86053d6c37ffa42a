"""Live status of `shoal up` on the terminal: services, replicas and proxy sync state."""

from __future__ import annotations

from rich.table import Table

from shoal.generate import SHORT_NAMES
from shoal.runtime.supervisor import Supervisor


def _sync(types: dict[str, dict[str, str | None]]) -> str:
    if not types:
        return "connecting"
    if any(t.get("nack") for t in types.values()):
        return "NACK"
    if all(t.get("sent") and t.get("sent") == t.get("acked") for t in types.values()):
        return "SYNCED"
    return "syncing"


def status_table(sup: Supervisor) -> Table:
    syncz = {str(p["node"]): p for p in sup.cp.ads.syncz()}
    settings = sup.cp.settings
    table = Table(
        title=f"shoal up — xDS :{sup.cp.xds_port}, admin :{settings.admin_port}",
        caption=f"dashboard: http://{settings.host}:{settings.admin_port}/dashboard/",
    )
    for col in ("SERVICE", "REPLICA", "LABELS", "PID", "STATE", "RESTARTS", "PORT", "SIDECAR"):
        table.add_column(col)
    for replica in sup.all():
        entry = syncz.get(replica.node_id)
        types = entry["types"] if entry else {}
        assert isinstance(types, dict)
        labels = ",".join(f"{k}={v}" for k, v in sorted(replica.spec.labels.items()))
        table.add_row(
            replica.hostname.split(".svc.")[0],
            replica.name,
            labels,
            str(replica.app.pid if replica.app and replica.app.running else "-"),
            replica.status.state,
            str(replica.status.restarts),
            f"app {replica.ports.app} in {replica.ports.inbound} out {replica.ports.outbound}",
            _sync(types),
        )
    return table


__all__ = ["SHORT_NAMES", "status_table"]
