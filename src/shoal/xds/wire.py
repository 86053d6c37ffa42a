"""Encode responses straight to protobuf wire bytes from pre-serialized resources.

Each resource's `Any` is serialized once per snapshot (`generate.prepare`). A response to one
proxy is then a concatenation: field headers plus those shared bytes, with no protobuf object
built per proxy. The layout is protobuf's deterministic one (fields in number order), so the
bytes parse back to exactly the `DiscoveryResponse`/`DeltaDiscoveryResponse` they stand for
(checked in tests/unit/xds/test_wire.py).
"""

from __future__ import annotations

import sys

from shoal.generate import PreparedResource
from shoal.generate.protowire import field as _field
from shoal.generate.protowire import text as _str
from shoal.memo import IdentityMemo
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


# Whole messages that many streams send identically (see Response.cache_key): built once,
# and the same bytes object is queued on every stream, so a push to a thousand proxies
# holds one copy in memory, not a thousand.
_MESSAGES: IdentityMemo[bytes] = IdentityMemo(size=64)


def encode_sotw(resp: Response) -> bytes:
    """DiscoveryResponse: version_info=1, resources=2, type_url=4, nonce=5."""
    if resp.cache_key is None:
        return _sotw_message(resp)
    key = (
        *resp.cache_key,
        sys.intern(resp.type_url),
        sys.intern(resp.version),
        sys.intern(resp.nonce),
    )
    return _MESSAGES.get(key, lambda: _sotw_message(resp))


# PreparedResource -> its encoded `resources` entry of a DeltaDiscoveryResponse. Resources are
# shared by every stream (and by snapshots, for unchanged ones), so each is wrapped once; the
# least recently used go first (this was a dict cleared whole when full).
_DELTA_ENTRIES: IdentityMemo[bytes] = IdentityMemo(size=100_000)


def _encode_entry(r: PreparedResource) -> bytes:
    # discovery.v3.Resource: version=1, resource=2 (Any), name=3
    return _field(2, _str(1, r.version) + _field(2, r.any_bytes) + _str(3, r.name))


def _delta_entry(r: PreparedResource) -> bytes:
    return _DELTA_ENTRIES.get((r,), lambda: _encode_entry(r))


_DELTA = object()


def encode_delta(resp: Response) -> bytes:
    """DeltaDiscoveryResponse: system_version_info=1, resources=2, type_url=4, nonce=5,
    removed_resources=6."""
    if resp.cache_key is None:
        return _delta_message(resp)
    key = (
        _DELTA,  # the same maps, version and nonce can make a state-of-the-world message too
        *resp.cache_key,
        sys.intern(resp.type_url),
        sys.intern(resp.version),
        sys.intern(resp.nonce),
    )
    return _MESSAGES.get(key, lambda: _delta_message(resp))


def _delta_message(resp: Response) -> bytes:
    parts = [_str(1, resp.version)]
    parts.extend(_delta_entry(r) for r in resp.resources)
    parts.append(_str(4, resp.type_url))
    parts.append(_str(5, resp.nonce))
    parts.extend(_field(6, name.encode()) for name in resp.removed)
    return b"".join(parts)
