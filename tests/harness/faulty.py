"""Backends that fail or lag on demand, a black-hole port, and concurrent load with a tally.

``FaultyBackend`` answers like ``harness.backend.Backend`` (an ``x-backend`` header naming it)
but with a status and a delay that a test may change at any time, so one backend can be the
healthy replica, the slow one or the broken one. ``blackhole`` is a listening socket whose
accept queue is full: a connection attempt to it is neither accepted nor refused, so only a
connect timeout ends it. ``burst`` sends requests from several threads at once (each with its
own keep-alive connection) and counts statuses, backends and ``x-envoy-overloaded``.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        backend = self.server.backend
        backend.count()
        if backend.delay:
            time.sleep(backend.delay)
        status = backend.status
        body = f'{{"name": "{backend.name}", "status": {status}}}'.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-backend", backend.name)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Many concurrent callers in the load tests: do not let the kernel refuse them.
    request_queue_size = 128

    def __init__(self, backend: FaultyBackend) -> None:
        self.backend = backend
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # Envoy closing a pooled connection (idle timeout, overflow) is not news


class FaultyBackend:
    """An HTTP backend whose ``status`` and ``delay`` (seconds) can change while it runs."""

    def __init__(self, name: str, *, status: int = 200, delay: float = 0.0) -> None:
        self.name = name
        self.status = status
        self.delay = delay
        self._lock = threading.Lock()
        self._requests = 0
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"faulty-{name}",
            daemon=True,
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def count(self) -> None:
        with self._lock:
            self._requests += 1

    @property
    def requests(self) -> int:
        with self._lock:
            return self._requests

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextlib.contextmanager
def blackhole() -> Iterator[int]:
    """A loopback port where connection attempts hang (accept queue full); yields the port."""
    server = socket.socket()
    held: list[socket.socket] = []
    try:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = int(server.getsockname()[1])
        # With backlog 0 the queue holds one connection; once it is taken, SYNs are dropped.
        for _ in range(2):
            sock = socket.socket()
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                sock.connect(("127.0.0.1", port))
            held.append(sock)
        yield port
    finally:
        for sock in held:
            sock.close()
        server.close()


def burst(
    port: int,
    host: str,
    *,
    workers: int,
    requests_each: int,
    path: Callable[[int, int], str] = lambda w, i: "/",
    timeout: float = 5.0,
) -> Counter[str]:
    """``workers`` threads each send ``requests_each`` GETs at once; return the tally.

    Keys: backend names, ``status:NNN``, ``overloaded`` (responses carrying
    ``x-envoy-overloaded``) and ``error:<type>`` for transport errors.
    """
    total: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(workers)

    def run(w: int) -> None:
        out: Counter[str] = Counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        start.wait()
        for i in range(requests_each):
            try:
                conn.request("GET", path(w, i), headers={"Host": host})
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException) as exc:
                out[f"error:{type(exc).__name__}"] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
                continue
            out[f"status:{resp.status}"] += 1
            out[resp.getheader("x-backend") or "envoy"] += 1
            if resp.getheader("x-envoy-overloaded"):
                out["overloaded"] += 1
            if resp.will_close:
                conn.close()
        conn.close()
        with lock:
            total.update(out)

    threads = [threading.Thread(target=run, args=(w,), daemon=True) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout * requests_each + 5)
    return total
