"""HTTP backends that say who they are: the "services" behind the mesh in e2e tests.

Each ``Backend`` is a threaded HTTP/1.1 server on 127.0.0.1:0 answering every request with a
JSON echo (name, path, method, headers) and an ``x-backend`` header, so a test can tell which
subset a request reached through Envoy. It keeps connections alive like a real service (Envoy
pools upstream connections) and never closes an idle one itself: closing idle pooled
connections would race with Envoy reusing them and make 503s that are no fault of the mesh.

``GET /stream?chunks=N&every=S`` is a slow streaming answer: N chunked-encoded lines, one every
S seconds, for tests that need a request in flight across a proxy restart or drain.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive by default
    # Headers and body go out in two writes; with Nagle on, the body waits for Envoy's
    # delayed ACK and every request takes 40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def _stream(self) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        chunks = int(query.get("chunks", ["5"])[0])
        every = float(query.get("every", ["0.2"])[0])
        self.server.backend.count()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-backend", self.server.backend.name)
        self.end_headers()
        for i in range(chunks):
            line = f"chunk {i}\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()
            time.sleep(every)
        self.wfile.write(b"0\r\n\r\n")

    def _answer(self) -> None:
        if self.command == "GET" and self.path.startswith("/stream"):
            self._stream()
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        backend = self.server.backend
        body = json.dumps(
            {
                "name": backend.name,
                "path": self.path,
                "method": self.command,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                # every header line as received, repeats included (headers keeps the last)
                "header_list": [[k.lower(), v] for k, v in self.headers.items()],
            }
        ).encode()
        backend.count()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-backend", backend.name)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would drown the test output


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    backend: Backend

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # an idle pooled connection reset by an Envoy that exits (a hot-restart parent, a
        # stopped sidecar) is normal; anything else is still printed
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)


class Backend:
    """A named HTTP backend; use as a context manager (``with Backend("v1") as b: b.port``)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._requests = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def count(self) -> None:
        with self._lock:
            self._requests += 1

    @property
    def requests(self) -> int:
        """How many requests this backend has answered."""
        with self._lock:
            return self._requests

    @property
    def port(self) -> int:
        assert self._server is not None, "backend not started"
        return int(self._server.server_address[1])

    def start(self) -> Self:
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"backend-{self.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        # Handler threads block reading kept-alive connections; closing them lets them end.
        with server.sockets_lock:
            open_sockets = list(server.open_sockets)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
