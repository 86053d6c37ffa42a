"""Recognise a state-of-the-world ACK that repeats its subscription, from its wire bytes.

Every sotw request lists the whole subscription: an unscoped sidecar ACKs each endpoint push
with thousands of cluster names. Turning those into Python strings and comparing them with the
last list took ~0.2 ms per ACK, a fifth of a second of CPU per push to a thousand proxies,
although the list almost never changes. Here the request's raw bytes are compared instead: if
they are exactly the canonical serialization of (its version, node, the last name list, its
type, nonce and error), they parse to exactly that list, so the last list is reused without
reading a name (~8 µs). Anything else (a new list, another field order, unknown fields) takes
the slow path, which is always right.

Lists are interned (`Interned`, one per server): streams that send the same list share one
`NameList` (its bytes and names), so a thousand idle proxies hold one copy, not a thousand.
"""

from __future__ import annotations

import sys
import weakref
from dataclasses import dataclass
from typing import Final

from envoy.service.discovery.v3 import discovery_pb2

DiscoveryRequest: Final = discovery_pb2.DiscoveryRequest


@dataclass(frozen=True, slots=True, weakref_slot=True, eq=False)
class NameList:
    """One subscription list as sent: its serialization as field 3, and its names."""

    wire: bytes
    names: tuple[str, ...]


EMPTY = NameList(b"", ())


class Interned:
    """Wire bytes -> the one NameList with them; an entry goes when no stream holds it."""

    def __init__(self) -> None:
        self.lists: weakref.WeakValueDictionary[bytes, NameList] = weakref.WeakValueDictionary()

    def get(self, names: tuple[str, ...]) -> NameList:
        wire = DiscoveryRequest(resource_names=names).SerializeToString()
        found = self.lists.get(wire)
        if found is None:
            found = self.lists[wire] = NameList(wire, names)
        return found


def _repeats(raw: bytes, msg: discovery_pb2.DiscoveryRequest, last: NameList) -> bool:
    """Whether `raw` is exactly `msg`'s fields around `last`'s names, in field order."""
    head = DiscoveryRequest(version_info=msg.version_info)
    if msg.HasField("node"):
        head.node.CopyFrom(msg.node)
    tail = DiscoveryRequest(type_url=msg.type_url, response_nonce=msg.response_nonce)
    if msg.HasField("error_detail"):
        tail.error_detail.CopyFrom(msg.error_detail)
    before, after = head.SerializeToString(), tail.SerializeToString()
    return (
        len(raw) == len(before) + len(last.wire) + len(after)
        and raw.startswith(before)
        and raw.endswith(after)
        and raw[len(before) : len(raw) - len(after)] == last.wire
    )


def request_names(
    raw: bytes, msg: discovery_pb2.DiscoveryRequest, last: NameList | None, interned: Interned
) -> NameList:
    """The names `msg` (parsed from `raw`) subscribes to; `last` itself when they repeat it."""
    if last is not None and _repeats(raw, msg, last):
        return last
    if not msg.resource_names:
        return EMPTY
    # interned strings: streams whose lists differ only in order still share the names
    return interned.get(tuple(sys.intern(n) for n in msg.resource_names))
