"""The agent's SDS server: Envoy's certificate and trust bundle over a Unix domain socket.

`envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets`, state of the world. Two
secrets: `default` (the workload's chain and private key) and `ROOTCA` (every trusted root).
Each stream remembers the names Envoy asked for and the version it was last sent; a new
certificate goes out on every open stream at once, so Envoy swaps it without a restart and
without closing a connection. Secret contents are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2

log = logging.getLogger("shoal.agent")

SERVICE = "envoy.service.secret.v3.SecretDiscoveryService"
SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
DEFAULT = "default"
ROOTCA = "ROOTCA"


def secrets(chain_pem: str, key_pem: str, roots_pem: str) -> dict[str, bytes]:
    """The two secrets as serialized `Any`s, by name."""
    cert = secret_pb2.Secret(
        name=DEFAULT,
        tls_certificate=common_pb2.TlsCertificate(
            certificate_chain=base_pb2.DataSource(inline_bytes=chain_pem.encode()),
            private_key=base_pb2.DataSource(inline_bytes=key_pem.encode()),
        ),
    )
    roots = secret_pb2.Secret(
        name=ROOTCA,
        validation_context=common_pb2.CertificateValidationContext(
            trusted_ca=base_pb2.DataSource(inline_bytes=roots_pem.encode())
        ),
    )
    out = {}
    for secret in (cert, roots):
        wrapped = any_pb2.Any()
        wrapped.Pack(secret)
        out[secret.name] = wrapped.SerializeToString(deterministic=True)
    return out


def named_secrets(certs: dict[str, tuple[str, str]], roots_pem: str) -> dict[str, bytes]:
    """A node proxy's secrets: one certificate per name (chain, key) and `ROOTCA`."""
    out = {}
    for name, (chain_pem, key_pem) in certs.items():
        one = secrets(chain_pem, key_pem, roots_pem)
        cert = secret_pb2.Secret()
        wrapped = any_pb2.Any.FromString(one[DEFAULT])
        wrapped.Unpack(cert)
        cert.name = name
        wrapped.Pack(cert)
        out[name] = wrapped.SerializeToString(deterministic=True)
        out[ROOTCA] = one[ROOTCA]
    return out


@dataclass(eq=False)  # hashable by identity: streams live in a set
class _Stream:
    names: tuple[str, ...] = ()
    sent: str | None = None  # version last sent
    nacked: str | None = None  # version Envoy refused: never resent
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class SdsServer:
    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self.version = ""
        self.pushes = 0
        self._secrets: dict[str, bytes] = {}
        self._streams: set[_Stream] = set()
        self._nonces = itertools.count(1)
        self._server: grpc.aio.Server | None = None
        self._boot = f"{int(time.time() * 1000):x}"
        self._seq = 0

    def update(self, chain_pem: str, key_pem: str, roots_pem: str) -> None:
        """New secrets: push them on every open stream."""
        self.set_secrets(secrets(chain_pem, key_pem, roots_pem))

    def set_secrets(self, named: dict[str, bytes]) -> None:
        """Secrets by name (serialized `Any`s, see `named_secrets`): push them everywhere."""
        self._secrets = named
        self._seq += 1
        self.version = f"{self._boot}.{self._seq}"
        for stream in self._streams:
            stream.wake.set()

    async def start(self) -> None:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers([self._handler()])
        server.add_insecure_port(f"unix:{self.socket_path}")
        await server.start()
        self._server = server

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(0.2)

    def _handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "StreamSecrets": grpc.stream_stream_rpc_method_handler(
                    self._serve,
                    request_deserializer=discovery_pb2.DiscoveryRequest.FromString,
                    response_serializer=bytes,
                )
            },
        )

    def _response(self, stream: _Stream) -> bytes:
        resp = discovery_pb2.DiscoveryResponse(
            version_info=self.version, type_url=SECRET_TYPE, nonce=str(next(self._nonces))
        )
        for name in stream.names:
            if name in self._secrets:
                resp.resources.add().ParseFromString(self._secrets[name])
        stream.sent = self.version
        self.pushes += 1
        out: bytes = resp.SerializeToString(deterministic=True)
        return out

    async def _serve(
        self, requests: AsyncIterator[discovery_pb2.DiscoveryRequest], _: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        stream = _Stream()
        self._streams.add(stream)
        queue: asyncio.Queue[discovery_pb2.DiscoveryRequest | None] = asyncio.Queue()

        async def read() -> None:
            try:
                async for req in requests:
                    queue.put_nowait(req)
            finally:
                queue.put_nowait(None)

        reader = asyncio.create_task(read())
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                waker = asyncio.ensure_future(stream.wake.wait())
                done, _pending = await asyncio.wait(
                    {getter, waker}, return_when=asyncio.FIRST_COMPLETED
                )
                waker.cancel()
                if getter not in done:
                    getter.cancel()
                    stream.wake.clear()
                    if stream.names and stream.sent != self.version and self._secrets:
                        yield self._response(stream)
                    continue
                req = getter.result()
                if req is None:
                    return
                if req.HasField("error_detail"):
                    # a NACK: remember it, never resend that version
                    stream.nacked = self.version
                    log.warning(
                        "Envoy refused secrets version %s: %s",
                        self.version,
                        req.error_detail.message,
                    )
                names = tuple(req.resource_names)
                changed = names != stream.names
                stream.names = names
                if self._secrets and (
                    changed
                    or stream.sent is None
                    or (self.version not in (stream.sent, stream.nacked))
                ):
                    yield self._response(stream)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            self._streams.discard(stream)
