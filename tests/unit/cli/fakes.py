"""A real HTTP server on 127.0.0.1:0 that answers canned JSON by path: it stands in for the
control plane's admin API and an Envoy admin API in CLI unit tests (a fake of the wire
protocol, not of our client)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


class _Server(ThreadingHTTPServer):
    routes: dict[str, Any]
    daemon_threads = True


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        if self.path not in self.server.routes:
            self.send_error(404)
            return
        body = json.dumps(self.server.routes[self.path]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean


@contextmanager
def json_server(routes: dict[str, Any]) -> Iterator[str]:
    """Serve `routes` (path with query -> JSON value); yields `127.0.0.1:PORT`. Routes may
    be added after start (e.g. a syncz entry naming this same server as the Envoy admin)."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.routes = routes
    # A short poll interval: shutdown() waits for it, once per test.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def syncz_entry(
    workload: str,
    admin: str | None,
    *,
    namespace: str = "default",
    delta: bool = False,
    types: dict[str, dict[str, str | None]] | None = None,
) -> dict[str, Any]:
    """One /debug/syncz entry in the control plane's format, all four types SYNCED by default."""
    synced = {"sent": "boot-abc123", "acked": "boot-abc123", "nack": None}
    return {
        "node": f"sidecar~127.0.0.1~{workload}.{namespace}~{namespace}.svc.cluster.local",
        "workload": workload,
        "namespace": namespace,
        "labels": {"app": workload},
        "admin": admin,
        "delta": delta,
        "connected_at": 1.0,
        "types": types
        if types is not None
        else {t: dict(synced) for t in ("cds", "eds", "lds", "rds")},
    }
