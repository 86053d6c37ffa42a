"""The per-stream xDS protocol as a sans-IO state machine (no grpc, no asyncio).

Feed it Envoy's requests (`on_request`) and new desired config (`on_view`); it returns the
responses to send, in order. All protocol rules live here:

* ACK/NACK is decided by ``error_detail`` alone, matched by nonce; a stale nonce is ignored in
  state of the world, while delta subscription changes are honoured whatever the nonce.
* One response in flight per type; the next waits for its ACK or NACK.
* A version Envoy NACKed is never sent again; versions are content hashes prefixed by a boot id,
  so they never repeat across control-plane restarts and equal content keeps its version.
* A NACK is current only while Envoy's last answer for the type is that NACK. When the desired
  config goes back to what Envoy holds, it is answered anyway (a no-op for Envoy) so that the
  ACK proves the proxy in sync; the NACK stays as history (`NackRecord`).
* Make before break: clusters and endpoints go first; listeners and routes are held back until
  every cluster they name has been sent together with its endpoints; clusters still named by
  routes Envoy holds are kept until the new routes are ACKed. With a cluster push, EDS is sent
  again because changed clusters warm until their assignment arrives.

Speed: when a stream's target for a type is the snapshot's shared map (the usual case), no
per-resource Python work happens here: the map's digest and its difference from the map the
proxy holds are computed once per map by `mapcache`, whatever the number of streams. Which
responses many streams get alike (one encoded message for all) is `sharing.py`'s question,
and the nonce is made the same way on every path (`sharing.nonce`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from shoal.generate import (
    CLUSTER,
    ENDPOINT,
    LISTENER,
    PUSH_ORDER,
    ROUTE,
    PreparedResource,
    ProxyView,
)
from shoal.generate.resourceset import ResourceSet
from shoal.xds import mapcache, sharing
from shoal.xds.messages import Request, Response

WILDCARD_TYPES = frozenset({CLUSTER, LISTENER})
ResourceMap = Mapping[str, PreparedResource]
_NONE: ResourceMap = MappingProxyType({})


@dataclass
class _Inflight:
    nonce: str
    version: str
    base_version: str
    content: ResourceMap
    changed: frozenset[str]
    removed: tuple[str, ...]
    digest: str
    shared: bool


@dataclass(frozen=True)
class NackRecord:
    """One NACK: the version Envoy refused, its error text, and when (Unix time)."""

    version: str
    error: str
    at: float

    def to_json(self) -> dict[str, object]:
        return {"version": self.version, "error": self.error, "at": self.at}


@dataclass
class TypeState:
    """What one resource type looks like on this stream."""

    type_url: str
    requested: bool = False
    wildcard: bool = False
    # The subscription. Often exactly the names of a shared map: then it is that map's own
    # `names()` object, so a thousand streams hold one set (see `_canonical`).
    names: frozenset[str] = frozenset()
    # What Envoy holds: the objects sent on this stream (state of the world: the whole map
    # last ACKed, often a shared map; delta: kept per name), their versions for delta (which
    # also come from `initial_resource_versions` after a reconnect), and the digest of the
    # held content for state of the world.
    held_objects: ResourceMap = field(default_factory=dict)
    held_versions: dict[str, str] = field(default_factory=dict)
    held_digest: str | None = None
    held_shared: bool = False  # held_objects is a snapshot's shared map (diffs are cached)
    # delta: the map Envoy holds exactly (every name in it, nothing else), when known
    held_source: ResourceMap | None = None
    inflight: _Inflight | None = None
    sent_version: str | None = None
    acked_version: str | None = None
    # Envoy's error while its last answer for this type is a NACK, else None
    nack: str | None = None
    nacked: set[str] = field(default_factory=set)
    # history, kept after the NACK stops being current: the last one and how many
    last_nack: NackRecord | None = None
    nack_count: int = 0
    # names to answer again even if unchanged (EDS of clusters that are warming)
    force: set[str] = field(default_factory=set)
    last_nonce: str = ""
    # bumped whenever this type's stream state changes; with `idle` (the inputs under which
    # there was last nothing to send) it lets a pump skip types an event did not touch
    gen: int = 0
    idle: tuple[object, ...] | None = None
    # the maps whose ids `idle` holds, kept alive so that no other map can take their ids
    idle_maps: tuple[object, ...] = ()
    # the last subscription list as Envoy sent it (the server shares one tuple among streams
    # that send the same list, see `acknames`), and a generation of `names`
    names_seen: tuple[str, ...] = ()
    names_gen: int = 0
    # (id of a desired map, names_gen) -> whether `names` is exactly that map's keys
    covers: tuple[ResourceMap | None, int, bool] = (None, -1, False)

    def wants_all_of(self, desired: ResourceMap) -> bool:
        if isinstance(desired, ResourceSet) and self.names is desired.names():
            return True
        # the map itself is kept (not its id): a freed map's id may be reused by the next one
        if self.covers[0] is not desired or self.covers[1] != self.names_gen:
            self.covers = (desired, self.names_gen, self.names == desired.keys())
        return self.covers[2]

    def versions_held(self) -> dict[str, str]:
        """Name -> version of everything Envoy holds of this type, as far as shoal knows."""
        return {**{n: r.version for n, r in self.held_objects.items()}, **self.held_versions}

    def holds(self, name: str) -> bool:
        return name in self.held_objects or name in self.held_versions


def _version_of(resource: PreparedResource | None) -> str | None:
    return resource.version if resource is not None else None


def _needs(maps: list[ResourceMap]) -> frozenset[str]:
    """Clusters the route tables in `maps` give weight to because they have endpoints."""
    return frozenset().union(*(r.needs_endpoints for m in maps for r in m.values()))


class StreamProtocol:
    """One ADS stream's protocol state, state of the world (`delta=False`) or delta."""

    def __init__(
        self,
        *,
        delta: bool,
        boot_id: str,
        missing: Callable[[str, str], PreparedResource | None],
        clock: Callable[[], float] = time.time,
        share: bool = True,
        memos: mapcache.MapMemos | None = None,
    ) -> None:
        self.delta = delta
        # False: no map counts as shared and no response is marked as one many streams get
        # alike (`sharing.py`); the plain path the differential test compares against
        self.share = share
        # what streams learn about pairs of shared maps: the server hands all its streams one
        self._memos = memos if memos is not None else mapcache.MapMemos()
        self.boot_id = boot_id
        self._clock = clock  # stamps NACK history only
        # answer for a subscribed name the view does not hold (an empty EDS assignment)
        self._missing = missing
        self.view: ProxyView | None = None
        self.types: dict[str, TypeState] = {t: TypeState(t) for t in PUSH_ORDER}
        self._nonce = 0
        # EDS clusters sent new or changed in CDS whose assignment has not been sent since:
        # Envoy keeps them warming (and may hold back the CDS ACK) until EDS answers.
        self._warming: set[str] = set()
        self._warming_gen = 0
        # Envoy: listeners and routes wait for the clusters they name (make before break).
        # A proxyless gRPC client asks for clusters only once it holds the routes naming
        # them, so for it (set False) waiting would never end (generate/proxyless.py).
        self.ordered = True

    def awaiting_ack(self) -> bool:
        """Whether a response sent on this stream has not been answered yet."""
        return any(ts.inflight is not None for ts in self.types.values())

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

    def _canonical(self, ts: TypeState, names: frozenset[str]) -> frozenset[str]:
        """`names`, or the equal names object of the map the view wants this type to be."""
        if not self.share or self.view is None:
            return names
        return sharing.canonical(self.view.of(ts.type_url), names)

    def _set_names(self, ts: TypeState, names: frozenset[str], seen: tuple[str, ...]) -> None:
        ts.names_seen = seen
        if names is not ts.names and names != ts.names:
            ts.gen += 1
            ts.names_gen += 1
            ts.names = self._canonical(ts, names)

    def _sotw_request(self, ts: TypeState, req: Request) -> None:
        seen = req.names
        if seen is ts.names_seen or seen == ts.names_seen:
            # the list `names` was made from (every ACK repeats it; the server hands the
            # very same tuple again when the bytes repeat, see `acknames`)
            names = ts.names
        else:
            names = frozenset(seen) - {"*"}
        if ts.type_url in WILDCARD_TYPES:
            ts.wildcard = not names or "*" in req.names
        if not ts.requested:
            ts.gen += 1
            # The first request of a type on a stream is answered whatever nonce it carries.
            ts.requested = True
            self._set_names(ts, names, seen)
            return
        if req.nonce and ts.inflight is not None and req.nonce == ts.inflight.nonce:
            self._settle(ts, req.error)
            self._set_names(ts, names, seen)
        elif req.nonce and req.nonce != ts.last_nonce:
            # Stale: Envoy has since been sent a newer response. Ignored; its subscription
            # arrives again with the ACK of the newer response.
            return
        else:
            if not req.nonce:
                # Envoy asks afresh on a live stream: answer even if nothing changed.
                ts.gen += 1
                ts.force.update(ts.names or ts.held_objects.keys())
                ts.held_objects = _NONE
                ts.held_digest = None
                ts.held_shared = False
            self._set_names(ts, names, seen)

    def _delta_request(self, ts: TypeState, req: Request) -> None:
        if not ts.requested or req.subscribe or req.unsubscribe:
            ts.gen += 1
            ts.names_gen += 1
        if not ts.requested:
            ts.requested = True
            ts.wildcard = ts.type_url in WILDCARD_TYPES and (
                not req.subscribe or "*" in req.subscribe
            )
            # After a reconnect Envoy tells what it already holds: send only differences.
            ts.held_versions.update(req.initial_versions)
        if "*" in req.subscribe:
            ts.wildcard = True
        if "*" in req.unsubscribe:
            ts.wildcard = False
        names = ts.names
        if req.subscribe:
            names = names | frozenset(req.subscribe) - {"*"}
        if req.unsubscribe:
            names = names - frozenset(req.unsubscribe)
            ts.held_source = None
            objects = dict(ts.held_objects)
            for name in req.unsubscribe:
                ts.held_versions.pop(name, None)
                objects.pop(name, None)
            ts.held_objects = objects
        if names is not ts.names:
            ts.names = self._canonical(ts, names)
        if req.nonce and ts.inflight is not None and req.nonce == ts.inflight.nonce:
            self._settle(ts, req.error)

    def _settle(self, ts: TypeState, error: str | None) -> None:
        inflight = ts.inflight
        assert inflight is not None
        ts.inflight = None
        ts.gen += 1
        if error:
            ts.nack = error
            ts.nacked.add(inflight.base_version)
            ts.last_nack = NackRecord(inflight.version, error, self._clock())
            ts.nack_count += 1
            return
        ts.nack = None
        ts.acked_version = inflight.version
        content = inflight.content
        if self.delta:
            if ts.held_source is not None and not inflight.removed and not inflight.changed:
                return
            if ts.wildcard or ts.names is mapcache.names(content) or content.keys() <= ts.names:
                # Envoy now holds exactly `content`: keep the (shared) map, not a copy
                ts.held_objects = ts.held_source = content
                ts.held_versions = {}
                return
            objects = dict(ts.held_objects)
            for name in inflight.removed:
                ts.held_versions.pop(name, None)
                objects.pop(name, None)
            for name in inflight.changed:
                if ts.wildcard or name in ts.names:
                    objects[name] = content[name]
                    ts.held_versions[name] = content[name].version
            ts.held_objects = objects
            ts.held_source = None
            return
        if (
            ts.wildcard
            or (inflight.shared and ts.wants_all_of(content))
            or content.keys() <= ts.names
        ):
            ts.held_objects = content
            ts.held_digest = inflight.digest
            ts.held_shared = inflight.shared
        else:
            # the subscription shrank while the response was in flight
            ts.held_objects = {n: r for n, r in content.items() if n in ts.names}
            ts.held_digest = None
            ts.held_shared = False

    # ------------------------------------------------------------------ targets
    def _naming_maps(self) -> list[ResourceMap]:
        """The listeners and routes Envoy holds or is being sent: what names clusters."""
        maps: list[ResourceMap] = []
        for type_url in (LISTENER, ROUTE):
            ts = self.types[type_url]
            maps.append(ts.held_objects)
            if ts.inflight is not None:
                maps.append(ts.inflight.content)
        return maps

    def _route_maps(self) -> list[ResourceMap]:
        """The route tables Envoy holds or is being sent."""
        ts = self.types[ROUTE]
        return [ts.held_objects] + ([ts.inflight.content] if ts.inflight is not None else [])

    def _target(self, ts: TypeState) -> tuple[ResourceMap, bool]:
        """What Envoy should hold of this type, and whether it is the view's shared map."""
        assert self.view is not None
        desired = self.view.of(ts.type_url)
        target: ResourceMap
        if ts.wildcard or ts.wants_all_of(desired):
            target, shared = desired, self.share
        else:
            built: dict[str, PreparedResource] = {}
            for name in ts.names:
                res = (
                    desired.get(name)
                    or ts.held_objects.get(name)
                    or self._missing(ts.type_url, name)
                )
                if res is not None:
                    built[name] = res
            target, shared = built, False
        if ts.type_url == CLUSTER:
            # Keep clusters that listeners or routes Envoy holds still name (make before break).
            gone = frozenset().union(
                *(self._memos.uncovered(m, target) for m in self._naming_maps())
            )
            keep = {n: ts.held_objects[n] for n in gone if n in ts.held_objects}
            if keep:
                target, shared = {**target, **keep}, False
        elif ts.type_url == ENDPOINT:
            # Keep the endpoints of clusters that routes Envoy holds give weight to, until
            # routes no longer relying on them are sent (emptydest.py: last endpoint -> empty).
            relied = _needs(self._route_maps()) - _needs([self.view.of(ROUTE)])
            keep = {
                n: held
                for n in relied
                if n in target
                and (held := ts.held_objects.get(n)) is not None
                and held.version != target[n].version
            }
            if keep:
                target, shared = {**target, **keep}, False
        return target, shared

    def _endpoints_sent(self, names: frozenset[str]) -> bool:
        """Whether the view's assignments of `names` have been sent (emptydest.py: a route
        giving a cluster weight again waits for its first endpoint)."""
        assert self.view is not None
        eds = self.types[ENDPOINT]
        desired = self.view.of(ENDPOINT)
        sent = eds.inflight.content if eds.inflight is not None else eds.held_objects
        for name in names:
            want = desired.get(name)
            if want is None:
                continue  # not this proxy's to hold (scoped away): nothing to wait for
            got = sent.get(name)
            version = got.version if got is not None else None
            if eds.inflight is None and got is None:
                version = eds.held_versions.get(name)  # delta, after a reconnect
            if version != want.version:
                return False
        return True

    def _ready_for(self, target: ResourceMap) -> bool:
        """Listeners and routes wait until every cluster they name has been sent, with its
        endpoints. Envoy applies one ADS stream in order, so sent-before is warm-before;
        waiting for ACKs instead would deadlock, since Envoy may ACK clusters only once warm."""
        assert self.view is not None
        needs = _needs([target])
        if needs and not self._endpoints_sent(needs):
            return False
        refs = mapcache.refs(target)
        if not refs:
            return True
        if not refs.isdisjoint(self._warming):
            return False
        cds = self.types[CLUSTER]
        sent = cds.inflight.content if cds.inflight is not None else cds.held_objects
        if self._memos.covers(sent, target, refs):
            return True
        unsent = refs - sent.keys() - cds.held_objects.keys() - cds.held_versions.keys()
        # a name no cluster has (a bug elsewhere) must not block routing forever
        return not (unsent & self.view.of(CLUSTER).keys())

    # ------------------------------------------------------------------ output
    def _inputs(self, ts: TypeState) -> tuple[object, ...]:
        """Everything whether `ts` has something to send depends on (by identity/generation)."""
        assert self.view is not None
        desired = id(self.view.of(ts.type_url))
        t = self.types
        if ts.type_url == CLUSTER:  # clusters retained for held listeners and routes
            return (desired, ts.gen, t[LISTENER].gen, t[ROUTE].gen)
        if ts.type_url in (LISTENER, ROUTE):  # wait for the clusters (and endpoints) they name
            clusters = id(self.view.of(CLUSTER))
            eds = (id(self.view.of(ENDPOINT)), t[ENDPOINT].gen) if ts.type_url == ROUTE else ()
            return (desired, ts.gen, clusters, t[CLUSTER].gen, self._warming_gen, *eds)
        if ts.type_url == ENDPOINT:  # held back for the routes Envoy holds
            return (desired, ts.gen, self._warming_gen, id(self.view.of(ROUTE)), t[ROUTE].gen)
        return (desired, ts.gen)

    def _input_maps(self, ts: TypeState) -> tuple[object, ...]:
        assert self.view is not None
        return (
            self.view.of(ts.type_url),
            self.view.of(CLUSTER),
            self.view.of(ENDPOINT),
            self.view.of(ROUTE),
        )

    def _pump(self) -> list[Response]:
        if self.view is None:
            return []
        out = []
        for type_url in (*PUSH_ORDER, *(t for t in self.types if t not in PUSH_ORDER)):
            ts = self.types[type_url]
            if not ts.requested or ts.inflight is not None:
                continue
            inputs = self._inputs(ts)
            if inputs == ts.idle:
                continue  # nothing this type depends on changed since it was last idle
            target, shared = self._target(ts)
            if type_url in (LISTENER, ROUTE) and self.ordered and not self._ready_for(target):
                ts.idle, ts.idle_maps = inputs, self._input_maps(ts)
                continue
            response = self._respond(ts, target, shared)
            if response is None:
                ts.idle, ts.idle_maps = inputs, self._input_maps(ts)
            else:
                out.append(response)
        return out

    def _delta_changes(
        self, ts: TypeState, target: ResourceMap, forced: set[str]
    ) -> tuple[frozenset[str], tuple[str, ...]]:
        if ts.held_source is not None:
            changed, gone = self._memos.diff(ts.held_source, target)
        elif not ts.held_objects and not ts.held_versions:
            # Envoy holds nothing of this type yet (a new stream): everything, nothing removed
            return mapcache.names(target), ()
        else:
            # versions Envoy holds: as it reported them after a reconnect, or as sent since
            versions = ts.held_versions
            objects = ts.held_objects
            changed = frozenset(
                n
                for n, r in target.items()
                if (versions[n] if n in versions else _version_of(objects.get(n))) != r.version
            )
            gone = frozenset((versions.keys() | objects.keys()) - target.keys())
        removed = tuple(sorted(n for n in gone if ts.wildcard or n in ts.names))
        return changed | forced, removed

    def _respond(self, ts: TypeState, target: ResourceMap, shared: bool) -> Response | None:
        forced = {n for n in ts.force if n in target}
        if ts.type_url == ENDPOINT and self._warming:
            forced |= self._warming & target.keys()
        # Envoy's last answer was a NACK: answer even when it already holds the target (the
        # config went back), so its next answer is an ACK of what it should hold. Unless the
        # target is what it refused (checked below).
        confirm = ts.nack is not None
        base_digest = mapcache.digest(target)
        partial = False
        if self.delta:
            changed, removed = self._delta_changes(ts, target, forced)
            same = not changed and not removed
            if same and ts.sent_version is not None and not confirm:
                ts.force.clear()
                return None
        else:
            removed = ()
            same = base_digest == ts.held_digest
            if same and not forced and ts.sent_version is not None and not confirm:
                ts.force.clear()
                return None
            # Envoy keeps endpoints and routes a state-of-the-world response leaves out (only
            # listeners and clusters are replaced as a whole), so once it holds a full set,
            # EDS and RDS carry only what changed — as Istio's incremental EDS does.
            partial = ts.type_url not in WILDCARD_TYPES and ts.held_digest is not None
            if ts.type_url == CLUSTER or partial:
                changed, _ = self._memos.diff(
                    ts.held_objects, target, shared=shared and ts.held_shared
                )
            else:
                changed = frozenset()
        base = f"{self.boot_id}-{base_digest}"
        if base in ts.nacked:
            return None
        first = ts.sent_version is None
        # a forced resend or a confirmation of what Envoy already holds: this stream's own
        # (a first response is a function of the target alone, whatever forced it)
        fresh = (bool(forced) or (confirm and same)) and not first
        if not self.delta and confirm and same and partial and not forced:
            partial = False  # nothing differs: the whole set, a well-formed no-op for Envoy
        # delta: the whole shared map, nothing removed (a cold start)
        whole = self.delta and shared and not removed and len(changed) == len(target)
        counter = None
        if fresh:
            self._nonce += 1
            counter = self._nonce
        assert self.view is not None
        nonce = sharing.nonce(self.view.version, base_digest, counter)
        position = sharing.Position(
            delta=self.delta,
            fresh=fresh,
            shared=shared,
            first=first,
            whole=whole,
            partial=partial,
            held=ts.held_objects,
            held_shared=ts.held_shared,
            held_source=ts.held_source,
        )
        cache_key = sharing.message_key(position, target) if self.share else None
        # a forced resend of equal content still needs a fresh version for Envoy to apply it
        version = base if base != ts.acked_version or not fresh else f"{base}.{counter}"
        ts.inflight = _Inflight(nonce, version, base, target, changed, removed, base_digest, shared)
        ts.force.clear()
        ts.gen += 1
        if ts.type_url == CLUSTER:
            warming = (
                target.eds_names()
                if isinstance(target, ResourceSet) and changed is target.names()
                else {n for n in changed if target[n].uses_eds}
            )
            if warming - self._warming:
                self._warming |= warming
                self._warming_gen += 1
        elif ts.type_url == ENDPOINT and self._warming & target.keys():
            self._warming -= target.keys()
            self._warming_gen += 1
        ts.sent_version = version
        ts.last_nonce = nonce
        if self.delta:
            if whole:
                resources = tuple(target.values())  # shared maps are in name order
            else:
                resources = tuple(target[n] for n in sorted(changed))
            return Response(ts.type_url, version, nonce, resources, removed, cache_key=cache_key)
        if partial:
            send = changed | forced
            resources = tuple(target[n] for n in sorted(send))
        elif shared:
            resources = tuple(target.values())  # shared maps are built in name order
        else:
            resources = tuple(target[n] for n in sorted(target))
        return Response(ts.type_url, version, nonce, resources, cache_key=cache_key)

    # ------------------------------------------------------------------ status
    def status(self) -> dict[str, dict[str, object]]:
        """Per requested type: `sent`, `acked`, `nack` (current only, DESIGN.md's contract)
        and the history beside it: `last_nack` (version, error, at) and `nacks` (count)."""
        return {
            t: {
                "sent": ts.sent_version,
                "acked": ts.acked_version,
                "nack": ts.nack,
                "last_nack": ts.last_nack.to_json() if ts.last_nack is not None else None,
                "nacks": ts.nack_count,
            }
            for t, ts in self.types.items()
            if ts.requested
        }
