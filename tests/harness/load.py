"""Real HTTP traffic through Envoy: steady background load and sequential bursts.

``SteadyLoad`` is what a user sees while config changes: worker threads send requests at a
fixed rate over keep-alive connections. A transport error or a 5xx is a failed request and its
reason is recorded. One case is *not* a failure: a reused keep-alive connection that the server
closed before it read our request (the request dies with zero response bytes). Every HTTP
client that pools connections (Go's net/http, urllib3, browsers) silently retries an idempotent
request on a new connection then; so do we, once, and count it in ``stale_retries``.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    total: int
    failures: list[str]
    by_backend: Counter[str]
    stale_retries: int = 0
    statuses: Counter[int] = field(default_factory=Counter)

    def summary(self) -> str:
        head = "; ".join(self.failures[:10])
        return (
            f"{self.total} requests, {len(self.failures)} failed, "
            f"by backend {dict(self.by_backend)}, "
            f"statuses {dict(self.statuses)}, stale keep-alive retries {self.stale_retries}"
            + (f"; first failures: {head}" if head else "")
        )


# Errors meaning "the server had closed this pooled connection before reading the request".
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class _Client:
    """One keep-alive connection that reconnects when the server closes it."""

    def __init__(self, port: int, timeout: float) -> None:
        self.port = port
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None
        self.used = 0  # requests sent on the current connection

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _once(self, host: str, path: str, headers: dict[str, str]) -> tuple[int, str, str]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            self.used = 0
        self.used += 1
        self.conn.request("GET", path, headers={"Host": host, **headers})
        resp = self.conn.getresponse()
        body = resp.read()
        if resp.will_close:
            self.close()
        detail = body[:200].decode(errors="replace") if resp.status >= 500 else ""
        return resp.status, resp.getheader("x-backend") or "", detail

    def get(self, host: str, path: str, headers: dict[str, str]) -> tuple[int, str, str, bool]:
        """Return (status, backend, error detail, retried-on-stale-connection)."""
        try:
            return (*self._once(host, path, headers), False)
        except _STALE:
            reused = self.used > 1
            self.close()
            if not reused:
                raise
        return (*self._once(host, path, headers), True)


class SteadyLoad:
    """Background GETs at ``rps`` requests per second, split over ``workers`` threads."""

    def __init__(
        self,
        port: int,
        host: str,
        path: str = "/",
        *,
        rps: float = 150,
        workers: int = 2,
        headers: dict[str, str] | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.port = port
        self.host = host
        self.path = path
        self.rps = rps
        self.workers = workers
        self.headers = headers or {}
        self.timeout = timeout
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._total = 0
        self._failures: list[str] = []
        self._by_backend: Counter[str] = Counter()
        self._statuses: Counter[int] = Counter()
        self._stale = 0

    def _record(self, status: int | None, backend: str, failure: str | None, stale: bool) -> None:
        with self._lock:
            self._total += 1
            self._stale += int(stale)
            if status is not None:
                self._statuses[status] += 1
            if failure is not None:
                self._failures.append(f"{time.strftime('%H:%M:%S')} {failure}")
            elif backend:
                self._by_backend[backend] += 1

    def _run(self, index: int) -> None:
        client = _Client(self.port, self.timeout)
        interval = self.workers / self.rps
        # Stagger workers so the rate is steady, not bursts of `workers` requests.
        next_at = time.monotonic() + index * interval / self.workers
        try:
            while not self._stop.is_set():
                delay = next_at - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                next_at = max(next_at + interval, time.monotonic() - interval)
                try:
                    status, backend, detail, stale = client.get(self.host, self.path, self.headers)
                except (OSError, http.client.HTTPException) as exc:
                    client.close()
                    self._record(None, "", f"transport: {exc!r}", False)
                    continue
                failure = f"{status} from {backend or 'envoy'}: {detail}" if status >= 500 else None
                self._record(status, backend, failure, stale)
        finally:
            client.close()

    def start(self) -> SteadyLoad:
        for i in range(self.workers):
            thread = threading.Thread(target=self._run, args=(i,), name=f"load-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def snapshot(self) -> LoadResult:
        """Counts so far, while the load keeps running."""
        with self._lock:
            return LoadResult(
                self._total,
                list(self._failures),
                Counter(self._by_backend),
                self._stale,
                Counter(self._statuses),
            )

    def stop(self) -> LoadResult:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 2)
        self._threads.clear()
        return self.snapshot()

    def __enter__(self) -> SteadyLoad:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def fire(
    port: int,
    host: str,
    n: int,
    path: str = "/",
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> Counter[str]:
    """Send ``n`` sequential GETs on one keep-alive connection.

    Returns a Counter of backend names (from ``x-backend``) and of statuses as ``"status:NNN"``;
    transport errors count as ``"error:<ExceptionType>"``.
    """
    client = _Client(port, timeout)
    out: Counter[str] = Counter()
    try:
        for _ in range(n):
            try:
                status, backend, _detail, _stale = client.get(host, path, headers or {})
            except (OSError, http.client.HTTPException) as exc:
                client.close()
                out[f"error:{type(exc).__name__}"] += 1
                continue
            out[f"status:{status}"] += 1
            if backend:
                out[backend] += 1
    finally:
        client.close()
    return out
