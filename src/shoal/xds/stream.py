"""The per-stream xDS protocol as a sans-IO state machine (no grpc, no asyncio).

Feed it Envoy's requests (`on_request`) and new desired config (`on_view`); it returns the
responses to send, in order. All protocol rules live here:

* ACK/NACK is decided by ``error_detail`` alone, matched by nonce; a stale nonce is ignored in
  state of the world, while delta subscription changes are honoured whatever the nonce.
* One response in flight per type; the next waits for its ACK or NACK.
* A version Envoy NACKed is never sent again; versions are content hashes prefixed by a boot id,
  so they never repeat across control-plane restarts and equal content keeps its version.
* Make before break: clusters and endpoints go first; listeners and routes are held back until
  every cluster they name has been sent together with its endpoints; clusters still named by
  routes Envoy holds are kept until the new routes are ACKed. With a cluster push, EDS is sent
  again because changed clusters warm until their assignment arrives.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from shoal.generate import (
    CLUSTER,
    ENDPOINT,
    LISTENER,
    PUSH_ORDER,
    ROUTE,
    PreparedResource,
    ProxyView,
)
from shoal.xds.messages import Request, Response

WILDCARD_TYPES = frozenset({CLUSTER, LISTENER})


@dataclass
class _Inflight:
    nonce: str
    version: str
    base_version: str
    content: dict[str, PreparedResource]
    changed: frozenset[str]


@dataclass
class TypeState:
    """What one resource type looks like on this stream."""

    type_url: str
    requested: bool = False
    wildcard: bool = False
    names: set[str] = field(default_factory=set)
    # what Envoy holds: name -> version, and the objects we sent for them on this stream
    held: dict[str, str] = field(default_factory=dict)
    held_objects: dict[str, PreparedResource] = field(default_factory=dict)
    inflight: _Inflight | None = None
    sent_version: str | None = None
    acked_version: str | None = None
    nack: str | None = None
    nacked: set[str] = field(default_factory=set)
    # names to answer again even if unchanged (EDS of clusters that are warming)
    force: set[str] = field(default_factory=set)
    last_nonce: str = ""


def _content_version(boot_id: str, content: Mapping[str, PreparedResource]) -> str:
    digest = hashlib.blake2b(digest_size=6)
    for name in sorted(content):
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(content[name].version.encode())
        digest.update(b"\n")
    return f"{boot_id}-{digest.hexdigest()}"


class StreamProtocol:
    """One ADS stream's protocol state, state of the world (`delta=False`) or delta."""

    def __init__(
        self,
        *,
        delta: bool,
        boot_id: str,
        missing: Callable[[str, str], PreparedResource | None],
    ) -> None:
        self.delta = delta
        self.boot_id = boot_id
        # answer for a subscribed name the view does not hold (an empty EDS assignment)
        self._missing = missing
        self.view: ProxyView | None = None
        self.types: dict[str, TypeState] = {t: TypeState(t) for t in PUSH_ORDER}
        self._nonce = 0
        # EDS clusters sent new or changed in CDS whose assignment has not been sent since:
        # Envoy keeps them warming (and may hold back the CDS ACK) until EDS answers.
        self._warming: set[str] = set()

    # ------------------------------------------------------------------ inputs
    def on_view(self, view: ProxyView) -> list[Response]:
        self.view = view
        return self._pump()

    def on_request(self, req: Request) -> list[Response]:
        ts = self.types.get(req.type_url)
        if ts is None:
            ts = self.types[req.type_url] = TypeState(req.type_url)
        if self.delta:
            self._delta_request(ts, req)
        else:
            self._sotw_request(ts, req)
        return self._pump()

    def _sotw_request(self, ts: TypeState, req: Request) -> None:
        names = {n for n in req.names if n != "*"}
        if ts.type_url in WILDCARD_TYPES:
            ts.wildcard = not names or "*" in req.names
        if not ts.requested:
            # The first request of a type on a stream is answered whatever nonce it carries.
            ts.requested = True
            ts.names = names
            return
        if req.nonce and ts.inflight is not None and req.nonce == ts.inflight.nonce:
            self._settle(ts, req.error)
            ts.names = names
        elif req.nonce and req.nonce != ts.last_nonce:
            # Stale: Envoy has since been sent a newer response. Ignored; its subscription
            # arrives again with the ACK of the newer response.
            return
        else:
            if not req.nonce:
                # Envoy asks afresh on a live stream: answer even if nothing changed.
                ts.force.update(ts.names or ts.held)
                ts.held.clear()
            ts.names = names

    def _delta_request(self, ts: TypeState, req: Request) -> None:
        if not ts.requested:
            ts.requested = True
            ts.wildcard = ts.type_url in WILDCARD_TYPES and (
                not req.subscribe or "*" in req.subscribe
            )
            # After a reconnect Envoy tells what it already holds: send only differences.
            ts.held.update(req.initial_versions)
        if "*" in req.subscribe:
            ts.wildcard = True
        if "*" in req.unsubscribe:
            ts.wildcard = False
        ts.names.update(n for n in req.subscribe if n != "*")
        for name in req.unsubscribe:
            ts.names.discard(name)
            ts.held.pop(name, None)
            ts.held_objects.pop(name, None)
        if req.nonce and ts.inflight is not None and req.nonce == ts.inflight.nonce:
            self._settle(ts, req.error)

    def _settle(self, ts: TypeState, error: str | None) -> None:
        inflight = ts.inflight
        assert inflight is not None
        ts.inflight = None
        if error:
            ts.nack = error
            ts.nacked.add(inflight.base_version)
            return
        ts.nack = None
        ts.acked_version = inflight.version
        keep = {n: r for n, r in inflight.content.items() if ts.wildcard or n in ts.names}
        ts.held = {n: r.version for n, r in keep.items()}
        ts.held_objects = keep

    # ------------------------------------------------------------------ targets
    def _refs_held(self, type_url: str) -> set[str]:
        ts = self.types[type_url]
        refs: set[str] = set()
        for res in ts.held_objects.values():
            refs |= res.refs
        if ts.inflight is not None:
            for res in ts.inflight.content.values():
                refs |= res.refs
        return refs

    def _target(self, ts: TypeState) -> dict[str, PreparedResource]:
        assert self.view is not None
        desired = self.view.of(ts.type_url)
        if ts.wildcard:
            target = dict(desired)
        else:
            target = {}
            for name in ts.names:
                res = (
                    desired.get(name)
                    or ts.held_objects.get(name)
                    or self._missing(ts.type_url, name)
                )
                if res is not None:
                    target[name] = res
        if ts.type_url == CLUSTER:
            # Keep clusters that listeners or routes Envoy holds still name (make before break).
            for name in self._refs_held(LISTENER) | self._refs_held(ROUTE):
                if name not in target and name in ts.held_objects:
                    target[name] = ts.held_objects[name]
        return target

    def _ready_for(self, target: Mapping[str, PreparedResource]) -> bool:
        """Listeners and routes wait until every cluster they name has been sent, with its
        endpoints. Envoy applies one ADS stream in order, so sent-before is warm-before;
        waiting for ACKs instead would deadlock, since Envoy may ACK clusters only once warm."""
        assert self.view is not None
        cds = self.types[CLUSTER]
        sent = cds.inflight.content if cds.inflight is not None else cds.held_objects
        known = self.view.of(CLUSTER)
        for res in target.values():
            for name in res.refs:
                if name in self._warming:
                    return False
                if name not in sent and name not in cds.held and name in known:
                    return False
        return True

    # ------------------------------------------------------------------ output
    def _pump(self) -> list[Response]:
        if self.view is None:
            return []
        out = []
        for type_url in (*PUSH_ORDER, *(t for t in self.types if t not in PUSH_ORDER)):
            ts = self.types[type_url]
            if not ts.requested or ts.inflight is not None:
                continue
            target = self._target(ts)
            if type_url in (LISTENER, ROUTE) and not self._ready_for(target):
                continue
            response = self._respond(ts, target)
            if response is not None:
                out.append(response)
        return out

    def _respond(self, ts: TypeState, target: dict[str, PreparedResource]) -> Response | None:
        forced = {n for n in ts.force if n in target}
        if ts.type_url == ENDPOINT:
            forced |= self._warming & target.keys()
        if self.delta:
            changed = {
                n: r for n, r in target.items() if ts.held.get(n) != r.version or n in forced
            }
            differs = frozenset(changed)
            removed = tuple(
                sorted(n for n in ts.held if n not in target and (ts.wildcard or n in ts.names))
            )
            if not changed and not removed and ts.sent_version is not None:
                ts.force.clear()
                return None
        else:
            changed = target
            differs = frozenset(n for n, r in target.items() if ts.held.get(n) != r.version)
            removed = ()
            same = {n: r.version for n, r in target.items()} == ts.held
            if same and not forced and ts.sent_version is not None:
                ts.force.clear()
                return None
        base = _content_version(self.boot_id, target)
        if base in ts.nacked:
            return None
        self._nonce += 1
        nonce = str(self._nonce)
        # a forced resend of equal content still needs a fresh version for Envoy to apply it
        version = base if base != ts.acked_version or not forced else f"{base}.{nonce}"
        ts.inflight = _Inflight(
            nonce=nonce, version=version, base_version=base, content=target, changed=differs
        )
        ts.force.clear()
        if ts.type_url == CLUSTER:
            self._warming |= {n for n in differs if target[n].uses_eds}
        elif ts.type_url == ENDPOINT:
            self._warming -= target.keys()
        ts.sent_version = version
        ts.last_nonce = nonce
        resources = tuple(changed[n] for n in sorted(changed))
        return Response(ts.type_url, version, nonce, resources, removed)

    # ------------------------------------------------------------------ status
    def status(self) -> dict[str, dict[str, str | None]]:
        return {
            t: {"sent": ts.sent_version, "acked": ts.acked_version, "nack": ts.nack}
            for t, ts in self.types.items()
            if ts.requested
        }
