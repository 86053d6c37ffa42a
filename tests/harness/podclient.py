"""A client an app would be, run inside a pod with `ip netns exec`: no proxy settings at all.

``http URL N [HEADER:VALUE ...]``: N GETs of URL (names resolve from the pod's hosts file,
traffic is captured into its sidecar), one JSON line per request: status, the JSON body (or
text), seconds taken. ``tcp HOST PORT N TIMEOUT``: N connections, each sends a line and prints the
line it gets back. Standard library only.
"""

from __future__ import annotations

import json
import socket
import sys
import time
import urllib.error
import urllib.request


def http(url: str, count: int, headers: dict[str, str]) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy, ever
    for _ in range(count):
        started = time.monotonic()
        req = urllib.request.Request(url, headers=headers)
        try:
            with opener.open(req, timeout=10) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            with err:
                status, raw = err.code, err.read()
        except OSError as err:
            status, raw = 0, f"{type(err).__name__}: {err}".encode()
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        took = time.monotonic() - started
        print(json.dumps({"status": status, "body": body, "seconds": took}), flush=True)


def tcp(host: str, port: int, count: int, timeout: float) -> None:
    for i in range(count):
        try:
            with socket.create_connection((host, port), timeout=timeout) as sock:
                sock.sendall(f"hello {i}\n".encode())
                line = sock.makefile().readline().strip()
        except OSError as err:
            line = f"error: {type(err).__name__}: {err}"
        print(json.dumps({"line": line}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "http":
        pairs = [h.split(":", 1) for h in sys.argv[4:]]
        http(sys.argv[2], int(sys.argv[3]), dict(pairs))
    else:
        tcp(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
