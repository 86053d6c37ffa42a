"""A tiny TCP peer for capture tests, run as a script inside a network namespace.

``serve PORT LABEL``: accept forever; to each connection answer one line -- LABEL, the
original destination (`SO_ORIGINAL_DST`, as Envoy's original_dst filter reads it) and the
local port -- then close. On a port nothing redirects to, the original destination is the
local address itself. ``connect HOST PORT [SOURCE]``: print the line the peer answers.
Standard library only: it runs under `ip netns exec ... setpriv` with any interpreter.
"""

from __future__ import annotations

import socket
import struct
import sys

SO_ORIGINAL_DST = 80


def _original_dst(conn: socket.socket) -> str:
    try:
        raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    except OSError:
        host, port = conn.getsockname()[:2]
        return f"{host}:{port}"
    port, packed = struct.unpack("!2xH4s8x", raw)
    return f"{socket.inet_ntoa(packed)}:{port}"


def serve(port: int, label: str) -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(16)
    print("listening", flush=True)
    while True:
        conn, _ = srv.accept()
        with conn:
            line = f"{label} {_original_dst(conn)} local:{conn.getsockname()[1]}\n"
            conn.sendall(line.encode())


def connect(host: str, port: int, source: str | None) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        if source:
            sock.bind((source, 0))
        sock.connect((host, port))
        print(sock.makefile().readline().strip())


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3])
    else:
        connect(sys.argv[2], int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else None)
