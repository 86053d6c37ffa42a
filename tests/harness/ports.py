"""Free loopback ports for processes that must be told their port up front (Envoy, shoal).

Binding 127.0.0.1:0 lets the kernel pick an unused port. The socket is closed before the port is
handed out, so another process could in theory grab it in between; handing out ports that were
never returned before in this run keeps two of our own processes from ever colliding.
"""

from __future__ import annotations

import socket
import threading

_lock = threading.Lock()
_handed_out: set[int] = set()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with _lock:
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind(("127.0.0.1", 0))
                port: int = sock.getsockname()[1]
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise RuntimeError("could not find a free loopback port in 100 tries")


def free_ports(n: int) -> list[int]:
    """Return ``n`` distinct free ports."""
    return [free_port() for _ in range(n)]
