"""Type URLs and the parsing of xDS resources, shared by every simulated proxy.

Each resource is parsed with the real protobuf classes (`Cluster`, `Listener` and its
`HttpConnectionManager`, `ClusterLoadAssignment`, `RouteConfiguration`) once per distinct
serialized form: `ResourceCache` keys the parse by the ``Any`` bytes, and recognises a whole
response another proxy already received (its bytes, nonce aside), because a thousand proxies
receive the same bytes. Sets of names are interned so that proxies holding the same set share
one object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.service.discovery.v3 import discovery_pb2

_PREFIX = "type.googleapis.com/"
CDS = _PREFIX + "envoy.config.cluster.v3.Cluster"
EDS = _PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"
LDS = _PREFIX + "envoy.config.listener.v3.Listener"
RDS = _PREFIX + "envoy.config.route.v3.RouteConfiguration"
SHORT = {CDS: "cds", EDS: "eds", LDS: "lds", RDS: "rds"}
TYPES = (CDS, EDS, LDS, RDS)
_HCM_URL = (
    _PREFIX + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
)

Response: TypeAlias = discovery_pb2.DiscoveryResponse | discovery_pb2.DeltaDiscoveryResponse
Request: TypeAlias = discovery_pb2.DiscoveryRequest | discovery_pb2.DeltaDiscoveryRequest


_INTERNED: dict[frozenset[str], frozenset[str]] = {}


def intern_names(names: frozenset[str]) -> frozenset[str]:
    """One frozenset object per distinct set of names, shared by every proxy holding it."""
    return _INTERNED.setdefault(names, names)


def clear_interned() -> None:
    """Forget the sets of an earlier run (a new fleet interns its own)."""
    _INTERNED.clear()


@dataclass(frozen=True)
class ResourceInfo:
    """What a proxy needs to know about one resource: its name and what it makes it request."""

    name: str
    eds: bool = False  # a Cluster of type EDS: its assignment is requested by name
    routes: tuple[str, ...] = ()  # a Listener: the route configurations its HCMs name
    port: int = 0  # a ClusterLoadAssignment: its first endpoint's port (tells edits apart)


@dataclass(frozen=True)
class Parsed:
    """A response's resources as a proxy needs them (shared by every proxy receiving it)."""

    infos: tuple[ResourceInfo, ...]
    names: frozenset[str]
    by_name: dict[str, ResourceInfo]
    eds: frozenset[str]  # clusters of type EDS among them
    # delta: (name, version) of each Resource, shared by every proxy (1,000 proxies x 6,000
    # resources would otherwise hold 6 million strings of their own)
    versions: tuple[tuple[str, str], ...] = ()


def _without_nonce(raw: bytes, nonce: str) -> memoryview:
    """The response's bytes minus a trailing nonce field (field 5), which servers write last."""
    data = nonce.encode()
    tail = b"\x2a" + bytes([len(data)]) + data if len(data) < 128 else b""
    view = memoryview(raw)
    return view[: -len(tail)] if tail and raw.endswith(tail) else view


class ResourceCache:
    """Parse each distinct serialized resource once, with the real protobuf classes; and
    recognise a response whose bytes (nonce aside) another proxy already received."""

    MAX_RESPONSES = 512

    def __init__(self) -> None:
        self._by_bytes: dict[tuple[str, bytes], ResourceInfo] = {}
        self._responses: dict[tuple[str, int, int], Parsed] = {}
        self.parsed = 0
        self.responses_parsed = 0

    def response(self, resp: Response, raw: bytes | None = None) -> Parsed:
        """The `Parsed` form of ``resp`` (``raw``: its serialized bytes, the memo key)."""
        key = None
        if raw is not None:
            body = _without_nonce(raw, resp.nonce)
            key = (resp.type_url, len(body), hash(body))
            found = self._responses.get(key)
            if found is not None:
                return found
        versions: tuple[tuple[str, str], ...] = ()
        if isinstance(resp, discovery_pb2.DeltaDiscoveryResponse):
            infos = tuple(self.info(resp.type_url, r.resource.value) for r in resp.resources)
            versions = tuple(
                (r.name or i.name, r.version) for r, i in zip(resp.resources, infos, strict=True)
            )
        else:
            infos = tuple(self.info(resp.type_url, a.value) for a in resp.resources)
        parsed = Parsed(
            infos,
            intern_names(frozenset(i.name for i in infos)),
            {i.name: i for i in infos},
            intern_names(frozenset(i.name for i in infos if i.eds)),
            versions,
        )
        self.responses_parsed += 1
        if key is not None:
            if len(self._responses) >= self.MAX_RESPONSES:
                self._responses.pop(next(iter(self._responses)))
            self._responses[key] = parsed
        return parsed

    def info(self, type_url: str, value: bytes) -> ResourceInfo:
        key = (type_url, value)
        found = self._by_bytes.get(key)
        if found is None:
            found = self._by_bytes[key] = _parse(type_url, value)
            self.parsed += 1
        return found

    def __len__(self) -> int:
        return len(self._by_bytes)


def _parse(type_url: str, value: bytes) -> ResourceInfo:
    if type_url == CDS:
        cluster = cluster_pb2.Cluster.FromString(value)
        return ResourceInfo(cluster.name, eds=cluster.type == cluster_pb2.Cluster.EDS)
    if type_url == LDS:
        listener = listener_pb2.Listener.FromString(value)
        routes: list[str] = []
        for chain in listener.filter_chains:
            for filt in chain.filters:
                if filt.typed_config.type_url == _HCM_URL:
                    hcm = hcm_pb2.HttpConnectionManager.FromString(filt.typed_config.value)
                    if hcm.HasField("rds"):
                        routes.append(hcm.rds.route_config_name)
        return ResourceInfo(listener.name, routes=tuple(sorted(set(routes))))
    if type_url == EDS:
        from envoy.config.endpoint.v3 import endpoint_pb2

        cla = endpoint_pb2.ClusterLoadAssignment.FromString(value)
        port = 0
        for locality in cla.endpoints:
            for lb in locality.lb_endpoints:
                port = port or lb.endpoint.address.socket_address.port_value
        return ResourceInfo(cla.cluster_name, port=port)
    from envoy.config.route.v3 import route_pb2

    return ResourceInfo(route_pb2.RouteConfiguration.FromString(value).name)
