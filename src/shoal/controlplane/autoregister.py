"""Auto-registration (Istio's): a proxy whose xDS stream names a WorkloadGroup becomes a
WorkloadEntry of that group while it stays connected and healthy.

A `shoal agent --workload-group NAME` on another host sends node metadata
`AUTO_REGISTER_GROUP` (Istio: `ISTIO_META_AUTO_REGISTER_GROUP`). When its stream is
identified (in secure mode the token has already proved its namespace and service account),
the group must exist in that namespace and its template's service account must be the
proxy's -- else the stream is refused: a workload can only join as who it is. The entry is
made from the group (`entry_document`): labels node metadata > group metadata > template,
the template's ports (in INTERCEPTION_MODE NONE every one is the sidecar's INBOUND_PORT: the
workload is reached through it), weight, service account, the address the proxy
advertises. It goes into the config store as a `Change` (source
`autoregister:WorkloadEntry/NS/NAME`), so it is a WorkloadEntry like a file's: selected by
ServiceEntries and Services, shown by /debug/config and analyze.

The entry leaves the store when the proxy has been disconnected for longer than the grace
period (Istio's PILOT_WORKLOAD_ENTRY_GRACE_PERIOD, 10 s; a reconnect within it keeps the
entry), or while the group's readiness probe fails. The agent runs the probe beside its
workload and reports each result over `shoal.workloads.v1.WorkloadHealth/Report` on the
xDS port (the same token); with a probe, the entry is served only once a report says it
passed, as Kubernetes serves a pod only once it is ready. /debug/autoregister lists every
entry with its state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
from google.protobuf import json_format, struct_pb2

from shoal.api import Change, Resource
from shoal.api.workloadgroup import WorkloadGroupSpec
from shoal.ca.service import authorization
from shoal.model import Proxy
from shoal.xds.server import Connection

log = logging.getLogger("shoal.autoregister")

GROUP_METADATA = "AUTO_REGISTER_GROUP"
GROUP_ANNOTATION = "istio.io/autoRegistrationGroup"
TLS_MODE_LABEL = "security.istio.io/tlsMode"
DEFAULT_GRACE_S = 10.0
HEALTH_SERVICE = "shoal.workloads.v1.WorkloadHealth"
REPORT_METHOD = f"/{HEALTH_SERVICE}/Report"

# (namespace, name) -> the WorkloadGroup resource, or None
GroupLookup = Callable[[str, str], Resource | None]
# `authorization` header -> (namespace, service account); None: no authentication (plain mode)
Authenticate = Callable[[str | None], Awaitable[tuple[str, str]]]


def entry_name(group: str, address: str) -> str:
    """Istio's name for an auto-registered entry: the group and the address."""
    return f"{group}-{address.replace('.', '-').replace(':', '-')}"[:253]


def entry_document(group: Resource, proxy: Proxy, address: str) -> dict[str, object]:
    """The WorkloadEntry `proxy` registers as in `group`, as a document for the store."""
    spec = group.spec
    assert isinstance(spec, WorkloadGroupSpec)
    tmpl = spec.template
    labels = {**tmpl.labels, **spec.metadata.labels, **proxy.labels}
    if proxy.secure:
        # its sidecar has the mesh certificate: callers speak mTLS to it (automatic mTLS)
        labels.setdefault(TLS_MODE_LABEL, "istio")
    ports: dict[str, int] = dict(tmpl.ports)
    if proxy.interception_mode == "NONE" and proxy.inbound_port is not None:
        ports = dict.fromkeys(ports, proxy.inbound_port)
    body: dict[str, object] = {
        "address": address,
        "labels": labels,
        "serviceAccount": tmpl.service_account or proxy.service_account,
    }
    if ports:
        body["ports"] = ports
    if tmpl.weight is not None:
        body["weight"] = tmpl.weight
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "WorkloadEntry",
        "metadata": {
            "name": entry_name(group.meta.name, address),
            "namespace": group.meta.namespace,
            "labels": dict(spec.metadata.labels),
            "annotations": {**spec.metadata.annotations, GROUP_ANNOTATION: group.meta.name},
        },
        "spec": body,
    }


def check_group(group: Resource | None, proxy: Proxy, name: str) -> str | None:
    """Why `proxy` may not join group `name` (None: it may)."""
    if group is None:
        return f"WorkloadGroup {proxy.namespace}/{name} does not exist"
    spec = group.spec
    assert isinstance(spec, WorkloadGroupSpec)
    wanted = spec.template.service_account or "default"
    if wanted != proxy.service_account:
        return (
            f"WorkloadGroup {proxy.namespace}/{name} is for service account {wanted}; "
            f"the proxy is {proxy.service_account}"
        )
    return None


@dataclass
class Registration:
    """One auto-registered entry and what decides whether it is served."""

    name: str
    namespace: str
    group: str
    address: str
    node_id: str
    service_account: str
    document: dict[str, object]
    has_probe: bool
    connections: set[int] = field(default_factory=set)
    connected_at: float = field(default_factory=time.time)
    disconnected_at: float | None = None
    removal: asyncio.TimerHandle | None = None
    stored: bool = False  # in the config store now

    @property
    def source(self) -> str:
        return f"autoregister:WorkloadEntry/{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Health:
    healthy: bool
    message: str
    at: float


class AutoRegistry:
    """Auto-registered WorkloadEntries: made on connect, dropped after the grace period or
    while unhealthy; their changes are taken by the control plane's reload."""

    def __init__(
        self,
        groups: GroupLookup,
        changed: Callable[[], None],
        *,
        grace_s: float = DEFAULT_GRACE_S,
        authenticate: Authenticate | None = None,
    ) -> None:
        self.groups = groups
        self.changed = changed
        self.grace_s = grace_s
        self.authenticate = authenticate
        self.entries: dict[tuple[str, str], Registration] = {}
        self.health: dict[tuple[str, str], Health] = {}
        self._by_conn: dict[int, tuple[str, str]] = {}
        self._pending: dict[str, Change] = {}
        self.removed = 0  # entries dropped after their grace period

    # ------------------------------------------------------------------ xDS hooks
    def on_connect(self, conn: Connection) -> str | None:
        proxy = conn.proxy
        assert proxy is not None
        group_name = proxy.auto_register_group
        if not group_name:
            return None
        group = self.groups(proxy.namespace, group_name)
        refusal = check_group(group, proxy, group_name)
        if refusal is not None:
            return f"auto-registration refused: {refusal}"
        assert group is not None
        address = (proxy.instance_ips or (proxy.ip,))[0]
        key = (proxy.namespace, entry_name(group_name, address))
        reg = self.entries.get(key)
        document = entry_document(group, proxy, address)
        assert isinstance(group.spec, WorkloadGroupSpec)
        if reg is None or reg.document != document:
            # new, or the group (or the proxy's labels) changed since: a new entry document
            old = reg
            reg = Registration(
                name=key[1],
                namespace=key[0],
                group=group_name,
                address=address,
                node_id=proxy.node_id,
                service_account=proxy.service_account,
                document=document,
                has_probe=group.spec.probe is not None,
            )
            if old is not None:
                reg.connections = old.connections
                reg.removal = old.removal
            self.entries[key] = reg
            log.info("auto-registered %s/%s (%s) in group %s", *key, address, group_name)
        if reg.removal is not None:
            reg.removal.cancel()
            reg.removal = None
        reg.disconnected_at = None
        reg.node_id = proxy.node_id
        reg.connections.add(conn.id)
        self._by_conn[conn.id] = key
        self._sync(reg)
        return None

    def on_disconnect(self, conn: Connection) -> None:
        key = self._by_conn.pop(conn.id, None)
        reg = self.entries.get(key) if key is not None else None
        if reg is None:
            return
        reg.connections.discard(conn.id)
        if reg.connections:
            return
        reg.disconnected_at = time.time()
        loop = asyncio.get_running_loop()
        reg.removal = loop.call_later(self.grace_s, self._expire, reg)
        log.info(
            "%s/%s disconnected; removed in %.1f s unless it returns",
            reg.namespace,
            reg.name,
            self.grace_s,
        )

    def _expire(self, reg: Registration) -> None:
        key = (reg.namespace, reg.name)
        if self.entries.get(key) is not reg or reg.connections:
            return
        del self.entries[key]
        self.health.pop(key, None)
        self.removed += 1
        log.info("%s/%s removed: disconnected for %.1f s", *key, self.grace_s)
        self._write(reg.source, None)

    # ------------------------------------------------------------------ store
    def _serving(self, reg: Registration) -> bool:
        if not reg.has_probe:
            return True
        health = self.health.get((reg.namespace, reg.name))
        return health is not None and health.healthy

    def _sync(self, reg: Registration, *, force: bool = False) -> None:
        want = self._serving(reg)
        if want == reg.stored and not force:
            return
        reg.stored = want
        self._write(reg.source, reg.document if want else None)

    def _write(self, source: str, document: dict[str, object] | None) -> None:
        self._pending[source] = Change(source=source, data=document)
        self.changed()

    def take_changes(self) -> list[Change]:
        changes, self._pending = list(self._pending.values()), {}
        return changes

    # ------------------------------------------------------------------ health reports
    async def report(
        self, request: struct_pb2.Struct, context: grpc.aio.ServicerContext
    ) -> struct_pb2.Struct:
        """An agent's probe result (or, without one, its first call): answers the group's
        probe, so the agent learns what to run from the group it joins."""
        fields = json_format.MessageToDict(request)
        namespace, group_name = str(fields.get("namespace", "")), str(fields.get("group", ""))
        address = str(fields.get("address", ""))
        who: tuple[str, str] | None = None
        if self.authenticate is not None:
            try:
                who = await self.authenticate(authorization(context))
            except ValueError as err:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(err))
                raise
            if who[0] != namespace:
                msg = f"the caller is of namespace {who[0]}, not {namespace}"
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, msg)
        group = self.groups(namespace, group_name)
        if group is None:
            msg = f"WorkloadGroup {namespace}/{group_name} does not exist"
            await context.abort(grpc.StatusCode.NOT_FOUND, msg)
        assert group is not None and isinstance(group.spec, WorkloadGroupSpec)
        if who is not None:
            wanted = group.spec.template.service_account or "default"
            if wanted != who[1]:
                msg = f"WorkloadGroup {namespace}/{group_name} is for service account {wanted}"
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, msg)
        key = (namespace, entry_name(group_name, address))
        if "healthy" in fields:
            healthy = bool(fields["healthy"])
            before = self.health.get(key)
            self.health[key] = Health(healthy, str(fields.get("message", "")), time.time())
            if before is None or before.healthy != healthy:
                log.info("%s/%s is %s", *key, "healthy" if healthy else "unhealthy")
            reg = self.entries.get(key)
            if reg is not None:
                self._sync(reg)
        reply = struct_pb2.Struct()
        probe = group.spec.probe
        reply.update(
            {
                "entry": key[1],
                "registered": key in self.entries,
                **({"probe": probe.model_dump(by_alias=True, mode="json")} if probe else {}),
            }
        )
        return reply

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            HEALTH_SERVICE,
            {
                "Report": grpc.unary_unary_rpc_method_handler(
                    self.report,
                    request_deserializer=struct_pb2.Struct.FromString,
                    response_serializer=struct_pb2.Struct.SerializeToString,
                )
            },
        )

    # ------------------------------------------------------------------ views
    def describe(self) -> dict[str, object]:
        out = []
        for key, reg in sorted(self.entries.items()):
            health = self.health.get(key)
            out.append(
                {
                    "name": reg.name,
                    "namespace": reg.namespace,
                    "group": reg.group,
                    "address": reg.address,
                    "node": reg.node_id,
                    "service_account": reg.service_account,
                    "connected": bool(reg.connections),
                    "connected_at": reg.connected_at,
                    "disconnected_at": reg.disconnected_at,
                    "probe": reg.has_probe,
                    "healthy": health.healthy if health is not None else None,
                    "health_message": health.message if health is not None else "",
                    "serving": reg.stored,
                }
            )
        return {"grace_period_s": self.grace_s, "removed": self.removed, "entries": out}

    def syncz(self, conn: Connection) -> dict[str, object]:
        key = self._by_conn.get(conn.id)
        reg = self.entries.get(key) if key is not None else None
        if reg is None:
            return {}
        return {"workload_entry": f"{reg.namespace}/{reg.name}", "serving": reg.stored}
