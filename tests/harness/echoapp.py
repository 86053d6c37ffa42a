"""A TCP app for `shoal up` tests: answers each line with its replica name and the line.

Listens on $HOST:$PORT (what `shoal up` gives an app); standard library only.
"""

from __future__ import annotations

import os
import socketserver


class _Echo(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline().decode(errors="replace").strip()
        self.wfile.write(f"{os.environ.get('SHOAL_REPLICA', '?')} {line}\n".encode())


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


if __name__ == "__main__":
    with _Server((os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"])), _Echo) as srv:
        srv.serve_forever()
