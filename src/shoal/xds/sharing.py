"""Which responses many streams get alike, so the encoder builds each such message once.

`stream.py` decides *what* a stream is sent (the protocol); this module decides only whether
that response is one every stream in the same position gets too, and names it by the maps it
was made from (`Response.cache_key`; `wire.py` keeps the encoded bytes under that key). A
push to a thousand proxies is then one message object queued a thousand times.

Nothing here may change a response's content, version or nonce: the nonce is made the same
way whichever path a response takes (`nonce`), and `tests/unit/xds/test_sharing_differential.py`
runs the same request sequences through streams with sharing on and off and compares every
response. With ``share=False`` (`StreamProtocol`) no map counts as shared and no response gets
a key: the plain path the differential test compares against.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shoal.generate import PreparedResource
from shoal.generate.resourceset import ResourceSet

ResourceMap = Mapping[str, PreparedResource]


def nonce(view_version: str, digest: str, fresh: int | None) -> str:
    """The nonce of a response carrying content `digest` under snapshot `view_version`.

    Equal for every stream sent the same content in the same snapshot, so that streams can
    share one encoded message. A stream never gets the same content twice within one snapshot
    unless it is forced to (equal content is skipped, NACKed content never resent), and the
    forced resends (`fresh`: the stream's own counter) are told apart by their suffix."""
    base = f"{view_version}/{digest}"
    return base if fresh is None else f"{base}.{fresh}"


@dataclass(frozen=True)
class Position:
    """Where a stream stands when a response of one type is made for it."""

    delta: bool
    fresh: bool  # a forced resend or a confirmation of what Envoy holds: this stream's own
    shared: bool  # the target is the view's shared map
    first: bool  # nothing of this type was sent on the stream yet
    whole: bool  # delta: every name of the target, none removed
    partial: bool  # state of the world: only what changed since the held set
    held: ResourceMap  # state of the world: what Envoy holds
    held_shared: bool  # ... and whether that is a shared map
    held_source: ResourceMap | None  # delta: the map Envoy holds exactly, when known


def message_key(pos: Position, target: ResourceMap) -> tuple[object, ...] | None:
    """The maps a response is a function of, when every stream in `pos` gets the very same
    message (None: it is this stream's own)."""
    if pos.fresh or not pos.shared:
        return None
    if pos.delta:
        if pos.whole and pos.first:
            return (target,)  # a cold start: every new stream gets the same first message
        if isinstance(pos.held_source, ResourceSet) and isinstance(target, ResourceSet):
            # from one shared map to another: the same changes for every stream that held
            # the first (a route table edit for a thousand proxies is one message)
            return (pos.held_source, target)
        return None
    if not pos.partial:
        return (target,)
    if pos.held_shared:
        return (pos.held, target)
    return None


def canonical(desired: ResourceMap | None, names: frozenset[str]) -> frozenset[str]:
    """`names`, or the equal names object of the shared map the stream wants, so that a
    thousand streams subscribed to one map hold one set (and compare by identity)."""
    if isinstance(desired, ResourceSet) and len(desired) == len(names):
        shared = desired.names()
        if shared == names:
            return shared
    return names
