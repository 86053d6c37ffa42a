"""Plain, protocol-neutral requests and responses of one xDS stream.

The servicer converts Envoy's protobuf requests into `Request` and encodes `Response` into
wire bytes; the state machine in `stream.py` sees only these, so it runs without grpc.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shoal.generate import PreparedResource


@dataclass(frozen=True)
class Request:
    """One DiscoveryRequest or DeltaDiscoveryRequest, reduced to what the protocol needs."""

    type_url: str
    nonce: str = ""
    version: str = ""  # state of the world: the last version Envoy accepted
    names: tuple[str, ...] = ()  # state of the world: the full subscription
    subscribe: tuple[str, ...] = ()  # delta
    unsubscribe: tuple[str, ...] = ()  # delta
    initial_versions: Mapping[str, str] = field(default_factory=dict)  # delta, first request
    error: str | None = None  # set: a NACK of the response with this nonce


@dataclass(frozen=True)
class Response:
    """What to send: full set (state of the world) or changes plus removals (delta)."""

    type_url: str
    version: str
    nonce: str
    resources: tuple[PreparedResource, ...]
    removed: tuple[str, ...] = ()
    # Set when every stream in the same position gets this very response (same shared maps,
    # same version and nonce): the encoder then builds the message once for all of them.
    cache_key: tuple[object, ...] | None = field(default=None, compare=False)
