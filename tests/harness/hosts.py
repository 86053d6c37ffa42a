""" "Hosts" for multi-host tests: network namespaces with their own addresses on one bridge.

Each host is a pod of `shoal.runtime.podnet` (its own network stack, an address on the
bridge, the test process on the bridge's .1). Processes run on a host through
`ip netns exec`; the test itself reaches a host's loopback (its sidecar's outbound port,
its Envoy admin) from a thread that entered the host's namespace (`setns` moves only the
calling thread, and a socket belongs to the namespace it was made in), so no helper
process sits between the test and what it measures.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import json
import os
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from harness import procs

T = TypeVar("T")

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _enter(netns: str) -> None:
    fd = os.open(f"/var/run/netns/{netns}", os.O_RDONLY)
    try:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({netns}): {os.strerror(err)}")
    finally:
        os.close(fd)


def in_netns(netns: str, fn: Callable[[], T], timeout: float = 30) -> T:
    """`fn()` called in a fresh thread inside `netns`; its result (or its exception)."""
    out: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            _enter(netns)
            out.append(fn())
        except BaseException as err:  # handed to the caller below
            errors.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if errors:
        raise errors[0]
    if not out:
        raise TimeoutError(f"call in {netns} did not return within {timeout} s")
    return out[0]


def http_get(port: int, path: str = "/", host: str = "", timeout: float = 5) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host} if host else {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def start_in(netns: str, argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    proc = subprocess.Popen(
        ["ip", "netns", "exec", netns, *argv], stdout=out, stderr=subprocess.STDOUT
    )
    out.close()
    procs.register(proc)
    return proc


@dataclass
class Load:
    """Requests sent one after another through a sidecar's outbound port, from its host:
    every answer's status and the replica that gave it, with the time it was sent."""

    netns: str
    port: int
    host: str
    threads: int = 2
    timeout_s: float = 15.0
    results: list[tuple[float, int, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _run(self) -> None:
        _enter(self.netns)
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            sent = time.monotonic()
            status, replica = 0, ""
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(
                        "127.0.0.1", self.port, timeout=self.timeout_s
                    )
                conn.request("GET", "/", headers={"Host": self.host})
                resp = conn.getresponse()
                body = resp.read()
                status = resp.status
                if status == 200:
                    replica = str(json.loads(body).get("replica", ""))
            except (OSError, http.client.HTTPException, ValueError) as err:
                replica = f"error: {err}"
                with contextlib.suppress(OSError):
                    if conn is not None:
                        conn.close()
                conn = None
            with self._lock:
                self.results.append((sent, status, replica))
            time.sleep(0.01)
        if conn is not None:
            conn.close()

    def start(self) -> Load:
        for _ in range(self.threads):
            worker = threading.Thread(target=self._run, daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(self.timeout_s + 5)

    def since(self, t: float) -> list[tuple[float, int, str]]:
        with self._lock:
            return [r for r in self.results if r[0] >= t]

    @staticmethod
    def summary(results: list[tuple[float, int, str]]) -> dict[str, Any]:
        return {
            "requests": len(results),
            "by_replica": dict(Counter(r[2] for r in results if r[1] == 200)),
            "failed": [r for r in results if r[1] != 200][:5],
            "failures": sum(1 for r in results if r[1] != 200),
        }
