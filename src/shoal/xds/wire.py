"""Encode responses straight to protobuf wire bytes from pre-serialized resources.

Each resource's `Any` is serialized once per snapshot (`generate.prepare`). A response to one
proxy is then a concatenation: field headers plus those shared bytes, with no protobuf object
built per proxy. The layout is protobuf's deterministic one (fields in number order), so the
bytes parse back to exactly the `DiscoveryResponse`/`DeltaDiscoveryResponse` they stand for
(checked in tests/unit/xds/test_wire.py).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from shoal.generate import PreparedResource
from shoal.generate.protowire import field as _field
from shoal.generate.protowire import text as _str
from shoal.memo import Memo
from shoal.xds.messages import Response


def _sotw_body(resources: tuple[PreparedResource, ...]) -> bytes:
    return b"".join([_field(2, r.any_bytes) for r in resources])


def _sotw_message(resp: Response) -> bytes:
    return b"".join(
        (
            _str(1, resp.version),
            _sotw_body(resp.resources),
            _str(4, resp.type_url),
            _str(5, resp.nonce),
        )
    )


class Encoder:
    """Encodes a server's responses, remembering what many streams send alike.

    Whole messages that many streams send identically (see Response.cache_key) are built once,
    and the same bytes object is queued on every stream, so a push to a thousand proxies holds
    one copy in memory, not a thousand. Delta entries (a PreparedResource wrapped as a
    `discovery.v3.Resource`) are made once per resource: resources are shared by every stream,
    and by snapshots for unchanged ones. Owned by the server (one per `AdsServer`), not the
    process; the least recently used entries go first."""

    def __init__(self, messages: int = 64, entries: int = 100_000) -> None:
        self.messages: Memo[bytes] = Memo(size=messages)
        self._entries: Memo[bytes] = Memo(size=entries)

    def sotw(self, resp: Response) -> bytes:
        """DiscoveryResponse: version_info=1, resources=2, type_url=4, nonce=5."""
        if resp.cache_key is None:
            return _sotw_message(resp)
        return self.messages.get(_key(resp), lambda: _sotw_message(resp))

    def delta(self, resp: Response) -> bytes:
        """DeltaDiscoveryResponse: system_version_info=1, resources=2, type_url=4, nonce=5,
        removed_resources=6."""
        if resp.cache_key is None:
            return _delta_message(resp, self._entry)
        # the same maps, version and nonce can make a state-of-the-world message too
        return self.messages.get((_DELTA, *_key(resp)), lambda: _delta_message(resp, self._entry))

    def _entry(self, r: PreparedResource) -> bytes:
        return self._entries.get((r,), lambda: _delta_entry(r))


_DELTA = object()


def _key(resp: Response) -> tuple[object, ...]:
    assert resp.cache_key is not None
    return (
        *resp.cache_key,
        sys.intern(resp.type_url),
        sys.intern(resp.version),
        sys.intern(resp.nonce),
    )


def _delta_entry(r: PreparedResource) -> bytes:
    # discovery.v3.Resource: version=1, resource=2 (Any), name=3
    return _field(2, _str(1, r.version) + _field(2, r.any_bytes) + _str(3, r.name))


def _delta_message(resp: Response, entry: Callable[[PreparedResource], bytes]) -> bytes:
    parts = [_str(1, resp.version)]
    parts.extend(entry(r) for r in resp.resources)
    parts.append(_str(4, resp.type_url))
    parts.append(_str(5, resp.nonce))
    parts.extend(_field(6, name.encode()) for name in resp.removed)
    return b"".join(parts)


def encode_sotw(resp: Response) -> bytes:
    """One DiscoveryResponse, remembering nothing (tests, benchmarks: an `Encoder` shares)."""
    return _sotw_message(resp)


def encode_delta(resp: Response) -> bytes:
    """One DeltaDiscoveryResponse, remembering nothing."""
    return _delta_message(resp, _delta_entry)
