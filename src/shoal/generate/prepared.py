"""`PreparedResource`: one generated Envoy resource, serialized once and shared by every proxy.

Resources are serialized deterministically, so equal config gives equal bytes and an equal
version; the xDS layer fans the same bytes out to every stream that needs them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from types import MappingProxyType

from google.protobuf import any_pb2
from google.protobuf.message import Message

CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"

# The order Envoy applies ADS updates in, and so the order shoal pushes them in.
PUSH_ORDER = (CLUSTER, ENDPOINT, LISTENER, ROUTE)
SHORT_NAMES = MappingProxyType(
    {CLUSTER: "cds", ENDPOINT: "eds", LISTENER: "lds", ROUTE: "rds", SECRET: "sds"}
)


@dataclass(frozen=True)
class PreparedResource:
    """A named resource with its serialized `Any`, content version and what it refers to."""

    name: str
    type_url: str
    any_bytes: bytes = field(repr=False)
    version: str
    # names of clusters this resource routes to (routes, listeners): used for make-before-break
    refs: frozenset[str] = frozenset()
    # a cluster that warms only when its EDS assignment arrives
    uses_eds: bool = False
    # clusters a route table gives weight to because they have endpoints (emptydest.py): it
    # is sent only after their assignments, which are not emptied while it is held
    needs_endpoints: frozenset[str] = frozenset()
    # HTTP filters a route table's routes turn on (typed_per_filter_config): the listener
    # that uses the table carries them, others do not (httpfilters.py)
    route_filters: frozenset[str] = frozenset()


def prepare(
    name: str, message: Message, refs: frozenset[str] = frozenset(), uses_eds: bool = False
) -> PreparedResource:
    """Serialize `message` once, deterministically, wrapped in `google.protobuf.Any`."""
    body = message.SerializeToString(deterministic=True)
    type_url = "type.googleapis.com/" + message.DESCRIPTOR.full_name
    return prepare_serialized(name, type_url, body, refs, uses_eds)


def prepare_serialized(
    name: str,
    type_url: str,
    body: bytes,
    refs: frozenset[str] = frozenset(),
    uses_eds: bool = False,
    *,
    needs_endpoints: frozenset[str] = frozenset(),
    route_filters: frozenset[str] = frozenset(),
) -> PreparedResource:
    """`prepare` for a message already serialized (deterministically) as `body`."""
    wrapped = any_pb2.Any(type_url=type_url, value=body).SerializeToString(deterministic=True)
    version = hashlib.blake2b(body, digest_size=8).hexdigest()
    return PreparedResource(
        name=name,
        type_url=type_url,
        any_bytes=wrapped,
        version=version,
        refs=refs,
        uses_eds=uses_eds,
        needs_endpoints=needs_endpoints,
        route_filters=route_filters,
    )


def unpack(resource: PreparedResource, message: Message) -> Message:
    """Parse a prepared resource back into `message` (for tests and debug output)."""
    outer = any_pb2.Any.FromString(resource.any_bytes)
    message.ParseFromString(outer.value)
    return message
