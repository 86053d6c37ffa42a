"""N simulated sidecars on grpc.aio: one ADS stream each, many streams per HTTP/2 connection.

`Fleet` opens one channel per ``per_channel`` proxies (forced onto its own TCP connection with
a local subchannel pool, since grpc would otherwise share one connection among channels with
equal arguments) and runs one `SimProxy` task per proxy. Each task writes what its
`ProxyState` returns and reads responses parsed with the real `DiscoveryResponse` /
`DeltaDiscoveryResponse` classes. Proxy 0 also keeps the serialized resources it holds and
those of the last response of each type (`Fleet.captured`, `Fleet.last_response`), which the
floor server replays byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import grpc
from envoy.service.discovery.v3 import discovery_pb2

from loadharness.protocol import CDS, LDS, TYPES, Identity, ProxyState
from loadharness.resources import Request, ResourceCache, Response

_ADS = "/envoy.service.discovery.v3.AggregatedDiscoveryService/"
CHANNEL_OPTIONS = [
    ("grpc.use_local_subchannel_pool", 1),
    # no BDP probing: flow-control windows stay small, so the harness does not buffer
    # gigabytes when the server writes faster than it reads (the writer waits instead)
    ("grpc.http2.bdp_probe", 0),
    ("grpc.max_receive_message_length", 512 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]


def _serialize(msg: Request) -> bytes:
    data: bytes = msg.SerializeToString()
    return data


def _sotw(raw: bytes) -> tuple[bytes, Response]:
    return raw, discovery_pb2.DiscoveryResponse.FromString(raw)


def _delta(raw: bytes) -> tuple[bytes, Response]:
    return raw, discovery_pb2.DeltaDiscoveryResponse.FromString(raw)


@dataclass
class SimProxy:
    """One simulated sidecar and its stream's outcome."""

    state: ProxyState
    capture: bool = False
    # proxy 0 only: per type, the serialized resources it holds and those of the last response
    held_bytes: dict[str, dict[str, bytes]] = field(default_factory=dict)
    last_bytes: dict[str, list[bytes]] = field(default_factory=dict)
    error: str | None = None  # the last stream error
    errors: list[str] = field(default_factory=list)  # every stream error, in order
    closed: bool = False
    reconnect_s: float = 0.5  # like Envoy's default xDS retry back-off base

    async def run(self, channel: grpc.aio.Channel) -> None:
        """Keep a stream open, reconnecting after an error the way Envoy does (it keeps what
        it holds and asks for everything again; the stream failures are counted)."""
        try:
            while True:
                if await self._stream(channel):
                    return
                await asyncio.sleep(self.reconnect_s)
        finally:
            self.closed = True

    async def _stream(self, channel: grpc.aio.Channel) -> bool:
        """One stream; True if it ended cleanly, False after an error."""
        delta = self.state.delta
        method = _ADS + ("DeltaAggregatedResources" if delta else "StreamAggregatedResources")
        call = channel.stream_stream(
            method, request_serializer=_serialize, response_deserializer=_delta if delta else _sotw
        )()
        try:
            self.state.connected = time.monotonic()
            for req in self.state.initial():
                await call.write(req)
            while True:
                item = await call.read()
                if item is grpc.aio.EOF:
                    break
                raw, resp = item
                for req in self.state.on_response(resp, time.monotonic(), len(raw), raw):
                    await call.write(req)
                if self.capture:
                    self._capture(resp)
        except grpc.aio.AioRpcError as err:
            self.error = f"{err.code().name}: {err.details()}"
            self.errors.append(self.error)
            return False
        finally:
            call.cancel()
        return True

    def _capture(self, resp: Response) -> None:
        held = self.held_bytes.setdefault(resp.type_url, {})
        if isinstance(resp, discovery_pb2.DeltaDiscoveryResponse):
            last = {r.name: r.SerializeToString(deterministic=True) for r in resp.resources}
            for name in resp.removed_resources:
                held.pop(name, None)
        else:
            cache = self.state.cache
            last = {
                cache.info(resp.type_url, a.value).name: a.SerializeToString(deterministic=True)
                for a in resp.resources
            }
            if resp.type_url in (CDS, LDS):
                held.clear()  # wildcard: the full set; EDS / RDS may carry only what changed
        held.update(last)
        self.last_bytes[resp.type_url] = list(last.values())


class Fleet:
    """N simulated sidecars connected to one ADS server."""

    def __init__(
        self,
        target: str,
        identities: Iterable[Identity],
        *,
        delta: bool = False,
        per_channel: int = 64,
        capture: int = 1,
    ) -> None:
        self.target = target
        self.cache = ResourceCache()
        self.watch: set[str] = set()  # EDS clusters whose endpoint port every proxy notes
        self.proxies = [
            SimProxy(
                ProxyState(ident, delta=delta, cache=self.cache, watch=self.watch),
                capture=i < capture,
            )
            for i, ident in enumerate(identities)
        ]
        self.per_channel = per_channel
        self._channels: list[grpc.aio.Channel] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> float:
        """Open every stream at once; return the monotonic time just before the first."""
        t0 = time.monotonic()
        for i, proxy in enumerate(self.proxies):
            if i % self.per_channel == 0:
                self._channels.append(
                    grpc.aio.insecure_channel(self.target, options=CHANNEL_OPTIONS)
                )
            self._tasks.append(asyncio.create_task(proxy.run(self._channels[-1])))
        return t0

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for channel in self._channels:
            await channel.close()
        self._tasks.clear()
        self._channels.clear()

    def captured(self) -> dict[str, list[bytes]]:
        """Per type, the serialized resources proxy 0 holds (what the floor starts from)."""
        return {t: list(held.values()) for t, held in self.proxies[0].held_bytes.items()}

    def last_response(self, type_url: str, proxy: int = 0) -> list[bytes]:
        """The serialized resources of the last response of ``type_url`` to ``proxy`` (one of
        the first ``capture`` proxies)."""
        return self.proxies[proxy].last_bytes.get(type_url, [])

    def errors(self) -> list[str]:
        """Every stream error of every proxy (each was followed by a reconnect)."""
        return [e for p in self.proxies for e in p.errors]

    async def wait(self, done: Callable[[], bool], limit_s: float, interval: float = 0.02) -> bool:
        """Poll ``done`` on the event loop the streams run on; False on timeout. The figures
        come from the recorded timestamps, not from this polling."""
        deadline = time.monotonic() + limit_s
        while not done():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(interval)
        return True

    def last_event(self) -> float:
        return max(
            (
                ev.received
                for p in self.proxies
                for rec in p.state.types.values()
                for ev in rec.events
            ),
            default=0.0,
        )

    async def quiet(self, quiet_s: float, limit_s: float = 30.0) -> bool:
        """Wait until no proxy has received anything for ``quiet_s`` seconds."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            idle = time.monotonic() - self.last_event()
            if idle >= quiet_s:
                return True
            await asyncio.sleep(max(0.02, quiet_s - idle))
        return False

    def all_acked(self) -> bool:
        return all(p.state.acked_all() for p in self.proxies)

    def synced_at(self) -> list[float]:
        """Per proxy: the time of its last ACK of any type (after a cold start: synced)."""
        out = []
        for p in self.proxies:
            acks = [r.last_ack() for r in p.state.types.values() if r.events]
            out.append(max(a for a in acks if a is not None) if acks else float("nan"))
        return out


def total_bytes(fleet: Fleet, since: float) -> int:
    """Bytes of responses received by every proxy at or after ``since``."""
    return sum(
        ev.size
        for p in fleet.proxies
        for t in TYPES
        for ev in p.state.types[t].events
        if ev.received >= since
    )
