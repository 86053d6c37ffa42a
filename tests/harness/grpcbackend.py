"""Real grpcio servers on loopback for the proxyless tests: one unary method that answers
with the backend's name, or fails, or is slow, as the test sets it.

No generated stubs: the method takes and returns raw bytes (`/shoal.test.Echo/Call`), which is
all the client needs to tell which backend answered.
"""

from __future__ import annotations

import threading
import time
from concurrent import futures
from types import TracebackType
from typing import Self

import grpc

METHOD = "/shoal.test.Echo/Call"


class GrpcBackend:
    """One grpcio server answering `name`; `fail_with` makes it abort every call with that
    status, `delay_s` makes it wait first. Counts the calls it saw."""

    def __init__(
        self,
        name: str,
        *,
        fail_with: grpc.StatusCode | None = None,
        delay_s: float = 0.0,
        tls: tuple[str, str, str] | None = None,
    ) -> None:
        """`tls`: (certificate chain PEM, key PEM, client roots PEM): the server then requires
        and verifies a client certificate (mTLS) and records the peers' URI SANs."""
        self.name = name
        self.fail_with = fail_with
        self.delay_s = delay_s
        self.calls = 0
        self.peers: list[str] = []  # the client's SPIFFE id per call, with `tls`
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        handler = grpc.method_handlers_generic_handler(
            "shoal.test.Echo", {"Call": grpc.unary_unary_rpc_method_handler(self._call)}
        )
        self._server.add_generic_rpc_handlers([handler])
        if tls is None:
            self.port = self._server.add_insecure_port("127.0.0.1:0")
        else:
            cert, key, roots = tls
            creds = grpc.ssl_server_credentials(
                [(key.encode(), cert.encode())],
                root_certificates=roots.encode(),
                require_client_auth=True,
            )
            self.port = self._server.add_secure_port("127.0.0.1:0", creds)

    def _call(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        sans = (context.auth_context() or {}).get("x509_subject_alternative_name", [])
        with self._lock:
            self.calls += 1
            self.peers.extend(s.decode() for s in sans if s.startswith(b"spiffe://"))
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail_with is not None:
            context.abort(self.fail_with, f"{self.name} fails on purpose")
        return self.name.encode()

    def start(self) -> Self:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
