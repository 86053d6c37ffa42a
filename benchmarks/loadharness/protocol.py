"""What one simulated sidecar does on its ADS stream, without any I/O (sans-IO).

`ProxyState` is fed the `DiscoveryResponse` / `DeltaDiscoveryResponse` messages the stream
receives (`on_response`) and returns the requests to write back, in the order Envoy writes
them: the ACK (or subscription change) of the type just received, then any request that the
new config makes necessary:

* CDS and LDS are wildcard; the first LDS request goes out once the first CDS response has
  been ACKed (Envoy asks for listeners after its initial clusters).
* EDS is requested by the names of the clusters of type EDS that CDS delivered; RDS by the
  ``rds.route_config_name`` of every HttpConnectionManager in the listeners.
* Every response is ACKed with its nonce (a simulated sidecar never NACKs).

Each resource is parsed with the real protobuf classes (`Cluster`, `Listener`,
`HttpConnectionManager`) once per distinct serialized form (`resources.ResourceCache` keys the
parse by bytes: a thousand proxies receive the same bytes). Every response and ACK is
recorded with its monotonic timestamp in `TypeRecord.events`, so a scenario can ask when each
proxy ACKed a new version of a type and whether it received anything at all.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import json_format, struct_pb2

from loadharness.resources import (
    CDS,
    EDS,
    LDS,
    RDS,
    SHORT,
    TYPES,
    Parsed,
    Request,
    ResourceCache,
    ResourceInfo,
    Response,
    intern_names,
)

__all__ = ["CDS", "EDS", "LDS", "RDS", "SHORT", "TYPES", "Identity", "ProxyState", "ResourceCache"]


@dataclass(frozen=True)
class Identity:
    """Node id and metadata of a NONE-mode sidecar, as DESIGN.md and Istio's agent write them."""

    pod: str
    namespace: str
    outbound_port: int
    inbound_port: int
    app: str = ""

    @property
    def node_id(self) -> str:
        return f"sidecar~127.0.0.1~{self.pod}.{self.namespace}~{self.namespace}.svc.cluster.local"

    def metadata(self) -> dict[str, Any]:
        app = self.app or self.pod
        return {
            "NAMESPACE": self.namespace,
            "LABELS": {"app": app},
            "SERVICE_ACCOUNT": app,
            "INSTANCE_IPS": "127.0.0.1",
            "WORKLOAD_NAME": app,
            "INTERCEPTION_MODE": "NONE",
            "OUTBOUND_PORT": str(self.outbound_port),
            "INBOUND_PORT": str(self.inbound_port),
        }

    def node(self) -> base_pb2.Node:
        meta = struct_pb2.Struct()
        json_format.Parse(json.dumps(self.metadata()), meta)
        return base_pb2.Node(id=self.node_id, cluster=self.app or self.pod, metadata=meta)


@dataclass
class Event:
    """One response on a type: when it arrived, its version, and when it was ACKed."""

    received: float
    version: str
    size: int
    resources: int
    acked: float | None = None
    # EDS: port of the first endpoint of each watched cluster in this response
    ports: dict[str, int] | None = None


@dataclass
class TypeRecord:
    """A proxy's state for one type: what it holds and the history of responses."""

    version: str = ""  # state of the world: version_info of the last response ACKed
    nonce: str = ""
    names: frozenset[str] = frozenset()  # sotw: the names held (interned across proxies)
    resources: dict[str, str] = field(default_factory=dict)  # delta: name -> version
    subscribed: frozenset[str] = frozenset()  # EDS / RDS: the names asked for
    events: list[Event] = field(default_factory=list)

    def held(self, delta: bool) -> dict[str, str]:
        """Resource name -> version (state of the world: every resource has the response's)."""
        return dict(self.resources) if delta else dict.fromkeys(self.names, self.version)

    def _after(self, t0: float) -> list[Event]:
        # events are appended as responses arrive, so they are in `received` order: start at
        # t0 instead of scanning a churn's hundreds of earlier responses on every poll
        return self.events[bisect.bisect_left(self.events, t0, key=lambda e: e.received) :]

    def first_ack_after(self, t0: float) -> float | None:
        for ev in self._after(t0):
            if ev.acked is not None:
                return ev.acked
        return None

    def ack_of_version(self, version: str) -> float | None:
        for ev in self.events:
            if ev.version == version:
                return ev.acked
        return None

    def ack_of_serial(self, serial: int, sep: str = "-") -> float | None:
        """When this proxy ACKed a version ``<prefix>-<n>`` with n >= ``serial`` (servers that
        number their pushes, like the floor, may skip versions when pushes coalesce)."""
        # numbered versions only grow along the events: walk back from the newest while they
        # are still >= serial (usually a step or two) instead of forward through all of them
        found: Event | None = None
        for ev in reversed(self.events):
            tail = ev.version.rpartition(sep)[2]
            if tail.isdigit():
                if int(tail) < serial:
                    break
                found = ev
        return found.acked if found is not None else None

    def ack_of_port(self, cluster: str, port: int, t0: float) -> float | None:
        """When this proxy ACKed an EDS response giving ``cluster`` endpoint port ``port``."""
        for ev in self._after(t0):
            if ev.ports and ev.ports.get(cluster) == port:
                return ev.acked
        return None

    def last_ack(self) -> float | None:
        return self.events[-1].acked if self.events else None


class ProxyState:
    """The protocol of one simulated sidecar, state of the world or delta."""

    def __init__(
        self,
        identity: Identity,
        *,
        delta: bool,
        cache: ResourceCache,
        watch: set[str] | None = None,
    ) -> None:
        self.identity = identity
        # EDS clusters whose endpoint port is noted on every response (shared across proxies)
        self.watch = watch if watch is not None else set()
        self.delta = delta
        self.cache = cache
        self.types: dict[str, TypeRecord] = {t: TypeRecord() for t in TYPES}
        self._eds_clusters: frozenset[str] = frozenset()
        self._route_names: frozenset[str] = frozenset()
        self._listeners: dict[str, ResourceInfo] = {}
        self._lds_requested = False
        self._sent_node = False
        self.connected: float | None = None

    # ------------------------------------------------------------------ requests
    def _request(self, type_url: str, **kw: Any) -> Request:
        if self.delta:
            msg: Request = discovery_pb2.DeltaDiscoveryRequest(type_url=type_url, **kw)
        else:
            msg = discovery_pb2.DiscoveryRequest(type_url=type_url, **kw)
        if not self._sent_node:
            msg.node.CopyFrom(self.identity.node())
            self._sent_node = True
        return msg

    def initial(self) -> list[Request]:
        """The first request of a (new) stream: wildcard CDS, carrying the node. What the proxy
        holds is kept, as Envoy keeps its config; subscriptions start afresh."""
        self._sent_node = False
        self._lds_requested = False
        for rec in self.types.values():
            rec.subscribed, rec.nonce = frozenset(), ""
        return [self._request(CDS)]

    def _subscribe(self, type_url: str, names: frozenset[str]) -> Request | None:
        rec = self.types[type_url]
        if names == rec.subscribed:
            return None
        old, rec.subscribed = rec.subscribed, names
        rec.names = intern_names(rec.names & names)
        for gone in old - names:
            rec.resources.pop(gone, None)
        if self.delta:
            return self._request(
                type_url,
                resource_names_subscribe=sorted(names - old),
                resource_names_unsubscribe=sorted(old - names),
            )
        # state of the world: the full subscription, carrying the last version and nonce
        return self._request(
            type_url,
            resource_names=sorted(names),
            version_info=rec.version,
            response_nonce=rec.nonce,
        )

    # ------------------------------------------------------------------ responses
    def on_response(
        self, resp: Response, now: float, size: int = 0, raw: bytes | None = None
    ) -> list[Request]:
        """Apply ``resp`` (``raw``: its bytes, if known, to reuse another proxy's parse);
        return the ACK and any follow-up requests, to write in order."""
        type_url = resp.type_url
        rec = self.types.setdefault(type_url, TypeRecord())
        parsed = self.cache.response(resp, raw)
        infos = list(parsed.infos)
        self._apply(rec, resp, parsed)
        event = Event(now, rec.version, size or len(raw or b""), len(resp.resources))
        if type_url == EDS and self.watch:
            by_name = parsed.by_name
            event.ports = {n: by_name[n].port for n in self.watch if n in by_name}
        rec.events.append(event)
        out: list[Request] = []
        if self.delta:
            out.append(self._request(type_url, response_nonce=resp.nonce))
        else:
            names = sorted(rec.subscribed) if type_url in (EDS, RDS) else []
            out.append(
                self._request(
                    type_url,
                    version_info=rec.version,
                    response_nonce=rec.nonce,
                    resource_names=names,
                )
            )
        event.acked = now  # the ACK is the first request written back
        if type_url == CDS:
            eds = self._eds_after(rec, infos, parsed)
            follow = self._subscribe(EDS, eds)
            if follow is not None:
                out.append(follow)
            if not self._lds_requested:
                self._lds_requested = True
                out.append(self._request(LDS))
        elif type_url == LDS:
            routes = frozenset(r for info in self._listener_infos(rec, infos) for r in info.routes)
            follow = self._subscribe(RDS, routes)
            if follow is not None:
                out.append(follow)
        return out

    def _apply(self, rec: TypeRecord, resp: Response, parsed: Parsed) -> None:
        rec.nonce = resp.nonce
        if isinstance(resp, discovery_pb2.DeltaDiscoveryResponse):
            rec.version = resp.system_version_info
            rec.resources.update(parsed.versions)
            for name in resp.removed_resources:
                rec.resources.pop(name, None)
            return
        rec.version = resp.version_info
        if resp.type_url in (CDS, LDS):
            rec.names = parsed.names
        elif not parsed.names <= rec.names or rec.names - rec.subscribed:
            # EDS / RDS in state of the world: named resources stay until unsubscribed
            rec.names = intern_names((rec.names | parsed.names) & rec.subscribed)

    def _eds_after(
        self, rec: TypeRecord, infos: list[ResourceInfo], parsed: Parsed
    ) -> frozenset[str]:
        if self.delta:
            known = {i.name: i.eds for i in infos}
            eds = {n for n in self._eds_clusters if n in rec.resources and known.get(n, True)}
            eds |= {n for n, is_eds in known.items() if is_eds}
            self._eds_clusters = intern_names(frozenset(eds))
        else:
            self._eds_clusters = parsed.eds
        return self._eds_clusters

    def _listener_infos(self, rec: TypeRecord, infos: list[ResourceInfo]) -> list[ResourceInfo]:
        if not self.delta:
            return infos
        # delta: the listeners held are the union of earlier ones and this response's
        self._listeners.update((i.name, i) for i in infos)
        self._listeners = {n: i for n, i in self._listeners.items() if n in rec.resources}
        return list(self._listeners.values())

    # ------------------------------------------------------------------ queries
    def acked_all(self) -> bool:
        """Every type has been answered and ACKed at least once."""
        return all(self.types[t].events and self.types[t].events[-1].acked for t in TYPES)

    def received_since(self, t0: float) -> dict[str, int]:
        """Responses received at or after ``t0``, by short type name."""
        counts = {}
        for type_url, rec in self.types.items():
            n = sum(1 for ev in rec.events if ev.received >= t0)
            if n:
                counts[SHORT.get(type_url, type_url)] = n
        return counts

    def holds(self, type_url: str) -> dict[str, str]:
        return self.types[type_url].held(self.delta)
