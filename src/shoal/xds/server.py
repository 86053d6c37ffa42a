"""The grpc.aio ADS server: state of the world and delta on one port.

The servicer is thin: it turns protobuf requests into `messages.Request`, hands them and
config changes to each stream's `StreamProtocol`, and writes the encoded responses. Responses
are written as raw bytes (`wire.py`) so shared resources are never re-serialized per proxy.

In secure mode (`authenticate` set) every stream must carry `authorization` metadata that
names an identity (else UNAUTHENTICATED), and the node's NAMESPACE and SERVICE_ACCOUNT must be
that identity (else PERMISSION_DENIED): a proxy cannot fetch config as someone else. The port
then serves TLS (`credentials`) and may carry other services (`extra_handlers`, e.g. the CA).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import grpc
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import json_format
from google.protobuf.message import DecodeError

from shoal.generate import SHORT_NAMES, PreparedResource, ProxyView
from shoal.model import Proxy, ProxyError, PushRequest, parse_proxy
from shoal.xds.acknames import Interned, NameList, request_names
from shoal.xds.mapcache import MapMemos
from shoal.xds.messages import Request, Response
from shoal.xds.metrics import XdsMetrics, short
from shoal.xds.pushbudget import PushBudget
from shoal.xds.stream import StreamProtocol
from shoal.xds.viewsource import ViewSource
from shoal.xds.wire import Encoder

log = logging.getLogger("shoal.xds")

SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"
ViewFilter = Callable[[ProxyView], ProxyView]
# told of each identified stream (its Connection): may refuse it with a reason (auto-
# registration refusing a group the proxy may not join); and of each stream that ended
ConnectHook = Callable[["Connection"], str | None]
DisconnectHook = Callable[["Connection"], None]
# extra fields of a proxy's /debug/syncz entry (e.g. the WorkloadEntry it registered)
SynczExtra = Callable[["Connection"], dict[str, object]]
# `authorization` metadata value (or None) -> (namespace, service account), directly or
# awaited (a Kubernetes TokenReview); ValueError if bad, ConnectionError if it cannot be told
Authenticator = Callable[[str | None], tuple[str, str] | Awaitable[tuple[str, str]]]

_SERVER_OPTIONS = (
    # Envoy pings on its own schedule; refusing them would close streams with too_many_pings.
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 1000),
    ("grpc.http2.max_ping_strikes", 0),
    # A delta reconnect lists every resource Envoy holds; allow far more than 4 MiB.
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
    ("grpc.max_send_message_length", 256 * 1024 * 1024),
)


# Large responses on their way at once (see pushbudget.py): enough to keep every core busy
# encoding and sending, small beside a thousand copies of a multi-MB cold-start response.
PUSH_BUDGET_BYTES = 64 * 1024 * 1024


_VIEW = object()
_CLOSED = object()


@dataclass
class Connection:
    """One connected proxy's stream."""

    id: int
    delta: bool
    protocol: StreamProtocol
    queue: asyncio.Queue[object] = field(default_factory=asyncio.Queue)
    proxy: Proxy | None = None
    connected_at: float = field(default_factory=time.time)
    view_pending: bool = False
    next_view: ProxyView | None = None  # the view to apply when woken (None: compute it)
    identity: tuple[str, str] | None = None  # (namespace, service account) of the credential
    # nonce -> when the snapshot that produced the response was ready (for convergence)
    sent_at: dict[str, float] = field(default_factory=dict)
    # lag, per short type: since when (monotonic) the proxy lacks config it should have (the
    # snapshot behind the oldest response not yet ACKed), the nonce of the last response,
    # and how long the last ACK took after its snapshot was ready
    pending_since: dict[str, float] = field(default_factory=dict)
    last_nonce: dict[str, str] = field(default_factory=dict)
    converged_s: dict[str, float] = field(default_factory=dict)
    # state of the world: type -> the subscription list last sent (ACKs usually repeat it)
    name_lists: dict[str, NameList] = field(default_factory=dict)

    def wake(self) -> None:
        if not self.view_pending:
            self.view_pending = True
            self.queue.put_nowait(_VIEW)


def _parse(item: object) -> discovery_pb2.DiscoveryRequest | discovery_pb2.DeltaDiscoveryRequest:
    """A queued request: sotw ones arrive as raw bytes (see `acknames`), delta ones parsed."""
    if isinstance(item, bytes):
        return discovery_pb2.DiscoveryRequest.FromString(item)
    assert isinstance(item, discovery_pb2.DeltaDiscoveryRequest)
    return item


def _request(msg: discovery_pb2.DiscoveryRequest, names: tuple[str, ...]) -> Request:
    return Request(
        type_url=msg.type_url,
        nonce=msg.response_nonce,
        version=msg.version_info,
        names=names,
        error=msg.error_detail.message or f"code {msg.error_detail.code}"
        if msg.HasField("error_detail")
        else None,
    )


def _delta_request(msg: discovery_pb2.DeltaDiscoveryRequest) -> Request:
    return Request(
        type_url=msg.type_url,
        nonce=msg.response_nonce,
        subscribe=tuple(msg.resource_names_subscribe),
        unsubscribe=tuple(msg.resource_names_unsubscribe),
        initial_versions=dict(msg.initial_resource_versions),
        error=msg.error_detail.message or f"code {msg.error_detail.code}"
        if msg.HasField("error_detail")
        else None,
    )


class AdsServer:
    """Serves ADS to every proxy from the current generation (a `ViewSource`)."""

    def __init__(self, boot_id: str) -> None:
        self.boot_id = boot_id
        # this server's memos: what its streams share (map pairs, encoded messages)
        self._memos = MapMemos()
        self.encoder = Encoder()
        self._interned = Interned()  # sotw subscription lists, shared by the streams sending them
        self.generator: ViewSource | None = None
        self.view_filter: ViewFilter | None = None
        self.connections: dict[int, Connection] = {}
        self._ids = itertools.count(1)
        self._server: grpc.aio.Server | None = None
        self.authenticate: Authenticator | None = None
        self.credentials: grpc.ServerCredentials | None = None
        # credentials for each further port (`start(also=...)`): one object per port
        self.more_credentials: Callable[[], grpc.ServerCredentials] | None = None
        self.extra_handlers: list[grpc.GenericRpcHandler] = []
        self.on_connect: list[ConnectHook] = []
        self.on_disconnect: list[DisconnectHook] = []
        self.syncz_extra: list[SynczExtra] = []
        # ping each connection this often (None: never) and close it when a ping is not
        # answered within the timeout: a peer whose network went away (no FIN, no RST)
        # is noticed, so what depends on its stream (auto-registration) learns it is gone
        self.keepalive_s: float | None = None
        self.keepalive_timeout_s: float = 10.0
        self.metrics = XdsMetrics()
        self.metrics.watch_queue(lambda: sum(c.view_pending for c in self.connections.values()))
        self._snapshot_ready = time.monotonic()
        self.push_budget = PushBudget(PUSH_BUDGET_BYTES)
        # ids of streams with a push to process or a response not yet ACKed
        self._unsettled: set[int] = set()

    # ------------------------------------------------------------------ config
    def update(self, generator: ViewSource, push: PushRequest | None = None) -> None:
        """A new generation: every stream whose view changed pushes what changed in it.

        `push` says what changed (None: anything may have). When nothing did, no stream is
        looked at. Otherwise a generation hands out the previous view object again when
        nothing a proxy holds changed -- it took over what the push request left untouched
        (generate/reuse.py) -- so a change a proxy cannot see costs its stream one lookup
        here and no wake-up at all."""
        self.generator = generator
        if push is not None and push.empty:
            return
        self._snapshot_ready = time.monotonic()
        for conn in self.connections.values():
            if conn.proxy is None:
                continue  # not identified yet: it takes the current view when it is
            view = self._view(conn.proxy)
            if view is not conn.protocol.view:
                conn.next_view = view
                conn.wake()
                self._unsettled.add(conn.id)

    def fanning_out(self) -> bool:
        """Whether the last push is still on its way to more than a few proxies (one in 20):
        the debouncer holds the next push until it is not (see debounce.py)."""
        return len(self._unsettled) > max(1, len(self.connections) // 20)

    def _track(self, conn: Connection) -> None:
        if conn.view_pending or conn.protocol.awaiting_ack():
            self._unsettled.add(conn.id)
        else:
            self._unsettled.discard(conn.id)

    def _missing(self, type_url: str, name: str) -> PreparedResource | None:
        return self.generator.missing(type_url, name) if self.generator is not None else None

    def _view(self, proxy: Proxy) -> ProxyView | None:
        if self.generator is None:
            return None
        view = self.generator.view(proxy)
        return self.view_filter(view) if self.view_filter is not None else view

    # ------------------------------------------------------------------ grpc
    async def start(self, host: str, port: int, also: Sequence[str] = ()) -> int:
        """Serve on host:port (0: a free port) and on the same port of the `also` hosts."""
        options: tuple[tuple[str, int], ...] = _SERVER_OPTIONS
        if self.keepalive_s is not None:
            options += (
                ("grpc.keepalive_time_ms", int(self.keepalive_s * 1000)),
                ("grpc.keepalive_timeout_ms", int(self.keepalive_timeout_s * 1000)),
            )
        server = grpc.aio.server(options=options)
        server.add_generic_rpc_handlers([self._handler(), *self.extra_handlers])
        bound = 0
        for i, address in enumerate((host, *also)):
            where = f"{address}:{bound or port}"
            creds = self.credentials
            if creds is not None and i > 0 and self.more_credentials is not None:
                creds = self.more_credentials()
            got: int = (
                server.add_secure_port(where, creds)
                if creds is not None
                else server.add_insecure_port(where)
            )
            bound = bound or got
        await server.start()
        self._server = server
        return bound

    async def stop(self, grace: float = 1.0) -> None:
        if self._server is not None:
            await self._server.stop(grace)

    def _handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "StreamAggregatedResources": grpc.stream_stream_rpc_method_handler(
                    functools.partial(self._serve, delta=False),
                    # raw bytes: parsed in `_handle`, which needs them to spot repeated lists
                    request_deserializer=None,
                    response_serializer=bytes,
                ),
                "DeltaAggregatedResources": grpc.stream_stream_rpc_method_handler(
                    functools.partial(self._serve, delta=True),
                    request_deserializer=discovery_pb2.DeltaDiscoveryRequest.FromString,
                    response_serializer=bytes,
                ),
            },
        )

    async def _read(self, requests: AsyncIterator[object], queue: asyncio.Queue[object]) -> None:
        try:
            # (not `async for`: its variable would keep the last request alive while waiting)
            incoming = aiter(requests)
            while True:
                queue.put_nowait(await anext(incoming))
        except (StopAsyncIteration, asyncio.CancelledError, grpc.aio.AioRpcError):
            pass
        finally:
            queue.put_nowait(_CLOSED)

    async def _serve(
        self, requests: AsyncIterator[object], context: grpc.aio.ServicerContext, *, delta: bool
    ) -> AsyncIterator[bytes]:
        conn = Connection(
            id=next(self._ids),
            delta=delta,
            protocol=StreamProtocol(
                delta=delta, boot_id=self.boot_id, missing=self._missing, memos=self._memos
            ),
        )
        if self.authenticate is not None:
            conn.identity = await self._authenticate(context)
        encode = self.encoder.delta if delta else self.encoder.sotw
        reader = asyncio.create_task(self._read(requests, conn.queue))
        try:
            while True:
                item = await conn.queue.get()
                if item is _CLOSED:
                    return
                responses, trigger = await self._handle(conn, item, context)
                self._track(conn)
                # Nothing of a request may stay referenced while this stream waits: a sotw
                # ACK lists every name subscribed, and a thousand idle streams each holding
                # their last one would hold hundreds of MB.
                del item
                while responses:
                    resp = responses.pop(0)
                    log.debug("response %s %s %s", resp.type_url, resp.version, resp.nonce)
                    data = encode(resp)
                    kind = short(resp.type_url)
                    self.metrics.pushes.labels(kind, trigger).inc()
                    self.metrics.resources_sent.labels(kind).inc(len(resp.resources))
                    self.metrics.bytes_sent.labels(kind).inc(len(data))
                    conn.sent_at[resp.nonce] = self._snapshot_ready
                    conn.pending_since.setdefault(kind, self._snapshot_ready)
                    conn.last_nonce[kind] = resp.nonce
                    del resp
                    grant = await self.push_budget.acquire(len(data))
                    try:
                        # A slow proxy blocks here (HTTP/2 flow control) and only itself: its
                        # later config changes coalesce into one pending view meanwhile.
                        yield data
                    finally:
                        self.push_budget.release(grant)
                    del data
        finally:
            reader.cancel()
            self.connections.pop(conn.id, None)
            self._unsettled.discard(conn.id)
            self.metrics.connected.set(len(self.connections))
            if conn.proxy is not None:
                log.info("proxy %s disconnected", conn.proxy.node_id)
                for hook in self.on_disconnect:
                    hook(conn)

    async def _handle(
        self, conn: Connection, item: object, context: grpc.aio.ServicerContext
    ) -> tuple[list[Response], str]:
        """The responses to one queued item (a new view or a request), and the trigger."""
        if item is _VIEW:
            conn.view_pending = False
            view, conn.next_view = conn.next_view, None
            return (conn.protocol.on_view(view) if view is not None else []), "config"
        try:
            msg = _parse(item)
        except DecodeError as err:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad request: {err}")
            raise
        if conn.proxy is None:
            await self._identify(conn, msg, context)
        if isinstance(msg, discovery_pb2.DeltaDiscoveryRequest):
            req = _delta_request(msg)
        else:
            assert isinstance(item, bytes)
            names = request_names(item, msg, conn.name_lists.get(msg.type_url), self._interned)
            conn.name_lists[msg.type_url] = names
            req = _request(msg, names.names)
        del msg
        log.debug("request %s", req)
        if req.error:
            assert conn.proxy is not None
            log.warning("NACK from %s for %s: %s", conn.proxy.node_id, req.type_url, req.error)
        self._observe_reply(conn, req)
        return conn.protocol.on_request(req), "request"

    def _observe_reply(self, conn: Connection, req: Request) -> None:
        """Count NACKs and time ACKs of what this server sent."""
        sent = conn.sent_at.pop(req.nonce, None) if req.nonce else None
        if sent is None:
            return
        kind = short(req.type_url)
        if req.error:
            self.metrics.nacks.labels(kind).inc()
        else:
            took = time.monotonic() - sent
            self.metrics.convergence.labels(kind).observe(took)
            conn.converged_s[kind] = took
            if conn.last_nonce.get(kind) == req.nonce:
                conn.pending_since.pop(kind, None)
        if len(conn.sent_at) > 64:  # answers to stale nonces never come
            for nonce in list(conn.sent_at)[:-16]:
                del conn.sent_at[nonce]

    async def _authenticate(self, context: grpc.aio.ServicerContext) -> tuple[str, str]:
        assert self.authenticate is not None
        header = None
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                header = str(value)
        try:
            identity = self.authenticate(header)
            return identity if isinstance(identity, tuple) else await identity
        except ValueError as err:
            log.warning("refusing unauthenticated xDS stream from %s: %s", context.peer(), err)
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(err))
            raise
        except ConnectionError as err:
            log.warning("cannot authenticate xDS stream from %s: %s", context.peer(), err)
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(err))
            raise

    async def _identify(
        self,
        conn: Connection,
        msg: discovery_pb2.DiscoveryRequest | discovery_pb2.DeltaDiscoveryRequest,
        context: grpc.aio.ServicerContext,
    ) -> None:
        """Parse the node: only the first request is sure to carry it."""
        metadata = json_format.MessageToDict(msg.node.metadata) if msg.HasField("node") else {}
        try:
            conn.proxy = parse_proxy(msg.node.id, metadata)
        except ProxyError as err:
            log.warning("refusing xDS stream: %s", err)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        assert conn.proxy is not None
        # a gRPC client subscribes to clusters only after the routes naming them
        conn.protocol.ordered = not conn.proxy.proxyless
        claimed = (conn.proxy.namespace, conn.proxy.service_account)
        if conn.identity is not None and claimed != conn.identity:
            msg = (
                f"node {conn.proxy.node_id} claims ns/{claimed[0]}/sa/{claimed[1]}; "
                f"its credential is ns/{conn.identity[0]}/sa/{conn.identity[1]}"
            )
            log.warning("refusing xDS stream: %s", msg)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, msg)
        proxy = conn.proxy
        for hook in self.on_connect:
            refusal = hook(conn)
            if refusal is not None:
                log.warning("refusing xDS stream of %s: %s", proxy.node_id, refusal)
                conn.proxy = None  # never connected: no disconnect hook either
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, refusal)
        self.connections[conn.id] = conn
        self.metrics.connected.set(len(self.connections))
        log.info("proxy %s connected (%s)", proxy.node_id, "delta" if conn.delta else "sotw")
        view = self._view(proxy)
        if view is not None:
            conn.protocol.view = view

    # ------------------------------------------------------------------ status
    def syncz(self) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for conn in sorted(self.connections.values(), key=lambda c: c.id):
            if conn.proxy is None:
                continue
            types = {SHORT_NAMES.get(t, t): st for t, st in conn.protocol.status().items()}
            now = time.monotonic()
            for kind, st in types.items():
                # lag: ms the proxy has gone without config it should have (0: in sync)
                since = conn.pending_since.get(kind)
                st["lag_ms"] = round((now - since) * 1000) if since is not None else 0
                took = conn.converged_s.get(kind)
                st["converged_ms"] = round(took * 1000, 1) if took is not None else None
            out.append(
                {
                    "node": conn.proxy.node_id,
                    "workload": conn.proxy.workload_name,
                    "namespace": conn.proxy.namespace,
                    "service_account": conn.proxy.service_account,
                    "labels": dict(conn.proxy.labels),
                    "admin": f"127.0.0.1:{conn.proxy.admin_port}"
                    if conn.proxy.admin_port
                    else None,
                    # where its Istio-named metrics are scraped (Istio's 15090)
                    "prometheus_port": conn.proxy.prometheus_port,
                    "delta": conn.delta,
                    "connected_at": conn.connected_at,
                    "types": types,
                    **{k: v for extra in self.syncz_extra for k, v in extra(conn).items()},
                }
            )
        return out
