"""The floor: a trivial ADS server that fans pre-serialized responses out to every stream.

No config logic and no per-proxy generation: it holds, per type, the serialized resources one
simulated proxy received from shoal (`Fleet.captured`), answers the first request of each type
on a stream with them, ACKs are merely read, and `push` sends the same bytes with a new
version to every stream (or to the named nodes). A response is built once per push and the
same bytes object goes to every stream (nonces need only be unique within a stream).
Whatever shoal needs beyond this is the control plane's own cost.

It runs in its own process (`FloorProcess`), as shoal does, so that it competes with the
simulated proxies for the CPU the same way; the benchmark drives it over a pipe.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import multiprocessing
import multiprocessing.connection
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from envoy.service.discovery.v3 import discovery_pb2

_SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"
_OPTIONS = [
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
    ("grpc.max_send_message_length", 512 * 1024 * 1024),
]
_CLOSED = object()


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits, value = value & 0x7F, value >> 7
        out.append(bits | 0x80 if value else bits)
        if not value:
            return bytes(out)


def field_bytes(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def response_body(version: str, type_url: str, resources: list[bytes]) -> bytes:
    """(Delta)DiscoveryResponse without its nonce: version=1, resources=2, type_url=4. The
    resources are serialized ``Any`` (state of the world) or ``Resource`` (delta) messages."""
    parts = [field_bytes(1, version.encode())]
    parts.extend(field_bytes(2, r) for r in resources)
    parts.append(field_bytes(4, type_url.encode()))
    return b"".join(parts)


def with_nonce(body: bytes, nonce: str) -> bytes:
    return body + field_bytes(5, nonce.encode())


@dataclass
class _Stream:
    queue: asyncio.Queue[object] = field(default_factory=asyncio.Queue)
    node: str = ""
    answered: set[str] = field(default_factory=set)
    inflight: dict[str, str] = field(default_factory=dict)  # type -> nonce awaiting its ACK
    pending: set[str] = field(default_factory=set)  # types with a newer push to send after it
    acks: int = 0


@dataclass(frozen=True)
class _Push:
    type_url: str


class FloorServer:
    """The trivial fan-out server (see the module docstring)."""

    def __init__(self, captured: dict[str, list[bytes]]) -> None:
        self.resources = dict(captured)
        self.streams: dict[int, _Stream] = {}
        self._ids = itertools.count(1)
        self._version = 0
        # one message per type, nonce included, shared by every stream: a nonce only has to be
        # unique within a stream, so the same bytes object goes to all of them (no copies)
        self._messages = {
            t: with_nonce(response_body("floor-0", t, r), "0") for t, r in self.resources.items()
        }
        self._nonce = dict.fromkeys(self.resources, "0")
        self._server: grpc.aio.Server | None = None

    async def start(self, port: int = 0) -> int:
        server = grpc.aio.server(options=_OPTIONS)
        handlers = {
            name: grpc.stream_stream_rpc_method_handler(
                self._serve, request_deserializer=cls.FromString, response_serializer=bytes
            )
            for name, cls in (
                ("StreamAggregatedResources", discovery_pb2.DiscoveryRequest),
                ("DeltaAggregatedResources", discovery_pb2.DeltaDiscoveryRequest),
            )
        }
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(_SERVICE, handlers)])
        bound: int = server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        self._server = server
        return bound

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(0.2)

    def push(self, type_url: str, resources: list[bytes] | None, nodes: set[str] | None) -> str:
        """Send ``resources`` (default: what it holds) with a new version to every stream (or
        to ``nodes``); return the version."""
        self._version += 1
        version = f"floor-{self._version}"
        if resources is not None:
            self.resources[type_url] = resources
        body = response_body(version, type_url, self.resources[type_url])
        self._nonce[type_url] = str(self._version)
        self._messages[type_url] = with_nonce(body, self._nonce[type_url])
        for stream in self.streams.values():
            if nodes is None or stream.node in nodes:
                stream.queue.put_nowait(_Push(type_url))
        return version

    def _send(self, stream: _Stream, type_url: str) -> bytes | None:
        """The latest message of ``type_url``, unless one is awaiting its ACK (like any xDS
        server, one response in flight per type; the newest push wins)."""
        if type_url in stream.inflight:
            stream.pending.add(type_url)
            return None
        stream.inflight[type_url] = self._nonce[type_url]
        return self._messages[type_url]

    async def _read(self, requests: AsyncIterator[Any], stream: _Stream) -> None:
        try:
            async for msg in requests:
                stream.queue.put_nowait(msg)
        except (asyncio.CancelledError, grpc.aio.AioRpcError):
            pass
        finally:
            stream.queue.put_nowait(_CLOSED)

    async def _serve(self, requests: AsyncIterator[Any], context: object) -> AsyncIterator[bytes]:
        sid = next(self._ids)
        stream = self.streams[sid] = _Stream()
        reader = asyncio.create_task(self._read(requests, stream))
        try:
            while True:
                item = await stream.queue.get()
                if item is _CLOSED:
                    return
                out = None
                if isinstance(item, _Push):
                    out = self._send(stream, item.type_url)
                else:
                    out = self._on_request(stream, item)
                if out is not None:
                    yield out
        finally:
            reader.cancel()
            self.streams.pop(sid, None)

    def _on_request(self, stream: _Stream, item: Any) -> bytes | None:
        type_url = item.type_url
        if not stream.node and item.HasField("node"):
            stream.node = item.node.id
        if item.response_nonce and stream.inflight.get(type_url) == item.response_nonce:
            stream.acks += 1
            del stream.inflight[type_url]
            if type_url in stream.pending:
                stream.pending.discard(type_url)
                return self._send(stream, type_url)
        if type_url not in stream.answered and type_url in self._messages:
            stream.answered.add(type_url)
            return self._send(stream, type_url)
        return None


def _serve_process(conn: multiprocessing.connection.Connection, captured: Any) -> None:
    async def main() -> None:
        floor = FloorServer(captured)
        conn.send(await floor.start())
        loop = asyncio.get_running_loop()
        while True:
            cmd = await loop.run_in_executor(None, conn.recv)
            if cmd[0] == "stop":
                break
            _, type_url, resources, nodes = cmd
            conn.send(floor.push(type_url, resources, nodes))
        await floor.stop()
        conn.send("stopped")

    asyncio.run(main())


class FloorProcess:
    """`FloorServer` in a child process, driven over a pipe."""

    def __init__(self, captured: dict[str, list[bytes]]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=_serve_process, args=(child, captured), name="floor", daemon=True
        )
        self.port = 0

    def start(self) -> int:
        self.proc.start()
        if not self._conn.poll(30):
            raise RuntimeError("floor server did not start")
        self.port = self._conn.recv()
        return self.port

    @property
    def pid(self) -> int:
        assert self.proc.pid is not None
        return self.proc.pid

    async def push(
        self, type_url: str, resources: list[bytes] | None = None, nodes: set[str] | None = None
    ) -> str:
        """Ask the floor to push; returns the version once it has queued the responses."""
        loop = asyncio.get_running_loop()
        self._conn.send(("push", type_url, resources, nodes))
        version: str = await loop.run_in_executor(None, functools.partial(self._conn.recv))
        return version

    def stop(self) -> None:
        if self.proc.is_alive():
            try:
                self._conn.send(("stop",))
                if self._conn.poll(5):
                    self._conn.recv()
            except (OSError, EOFError):
                pass
            self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
