"""Attaching to proxies' tap filters through their Envoy admin API, for `shoal tap`/`top`.

`POST /tap` with a tap request naming the filter's `config_id` (generate/telemetry_tap.py)
makes every matching tap filter of that Envoy send each request it sees, as JSON, down the
open response; closing the connection detaches it and the filters go idle again. Envoy
answers 200 as soon as the tap is attached (so a caller knows when to send traffic), and
refuses a second tap while one is attached.

The CLI has no event loop: each proxy's stream is read by a thread (blocking reads; `close`
shuts the socket down to wake it) and the events of all of them meet in one queue.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import queue
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from shoal.telemetry.tap import TapEvent, TraceSplitter, Workloads, event


class TapError(Exception):
    """A proxy could not be tapped; str() says which and why."""


@dataclass(frozen=True)
class TapTarget:
    name: str  # the proxy as shown (pod name or node id)
    admin: str  # host:port of its Envoy admin API
    workload: str
    config_id: str
    direction: str
    workloads: Workloads = field(default_factory=dict)  # who holds which identity


def tap_request(config_id: str) -> bytes:
    """Every request, headers only (bodies are not buffered: 0 bytes each way)."""
    return json.dumps(
        {
            "config_id": config_id,
            "tap_config": {
                "match": {"any_match": True},
                "output_config": {
                    "sinks": [{"format": "JSON_BODY_AS_STRING", "streaming_admin": {}}],
                    "max_buffered_rx_bytes": 0,
                    "max_buffered_tx_bytes": 0,
                },
            },
        }
    ).encode()


class TapStream:
    """One attached tap: `attach()`, then `read()` until it returns None."""

    def __init__(self, target: TapTarget, timeout: float = 5.0) -> None:
        self.target = target
        host, _, port = target.admin.rpartition(":")
        self._conn = http.client.HTTPConnection(host or "127.0.0.1", int(port), timeout=timeout)
        self._response: http.client.HTTPResponse | None = None
        self._splitter = TraceSplitter()
        self._closed = False

    def attach(self) -> None:
        where = f"the Envoy admin API of {self.target.name} at {self.target.admin}"
        try:
            self._conn.request(
                "POST",
                "/tap",
                body=tap_request(self.target.config_id),
                headers={"Content-Type": "application/json"},
            )
            response = self._conn.getresponse()
        except (OSError, http.client.HTTPException) as err:
            raise TapError(f"cannot reach {where}: {err}") from err
        if response.status != 200:
            why = response.read().decode(errors="replace").strip()
            if "already exists" in why:
                why = "another tap is attached to this proxy (Envoy allows one at a time)"
            raise TapError(f"{where} refused the tap: HTTP {response.status}: {why}")
        if self._conn.sock is not None:
            self._conn.sock.settimeout(None)  # a quiet proxy is not a dead one
        self._response = response

    def read(self) -> list[TapEvent] | None:
        """The next requests seen (blocks); None once the stream ended or was closed."""
        assert self._response is not None, "attach() first"
        try:
            data = self._response.read1(65536)
        except (OSError, ValueError, http.client.HTTPException):
            return None
        except AttributeError:
            # http.client, when close() from another thread won the race for its file
            if self._closed:
                return None
            raise
        if not data:
            return None
        out = []
        for trace in self._splitter.feed(data):
            found = event(
                trace,
                proxy=self.target.name,
                direction=self.target.direction,
                workload=self.target.workload,
                workloads=self.target.workloads,
            )
            if found is not None:
                out.append(found)
        return out

    def close(self) -> None:
        """Detach (Envoy sees the connection go); wakes a thread blocked in read()."""
        if self._closed:
            return
        self._closed = True
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._conn.close()


class TapFanIn:
    """Taps several proxies at once; their events come out of one queue."""

    def __init__(self, targets: Sequence[TapTarget]) -> None:
        self.streams = [TapStream(t) for t in targets]
        self._queue: queue.Queue[list[TapEvent] | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self.errors: dict[str, str] = {}
        self._ended = 0

    def attach(self) -> int:
        """Attach to every target (errors kept in `errors`); the number attached."""
        attached = []
        for stream in self.streams:
            try:
                stream.attach()
            except TapError as err:
                self.errors[stream.target.name] = str(err)
                stream.close()
                continue
            attached.append(stream)
        for stream in attached:
            thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
            thread.start()
            self._threads.append(thread)
        self.streams = attached
        return len(attached)

    def _pump(self, stream: TapStream) -> None:
        while (events := stream.read()) is not None:
            if events:
                self._queue.put(events)
        self._queue.put(None)  # this stream ended

    def get(self, timeout: float) -> list[TapEvent]:
        """Events that arrived within `timeout` seconds (all that are queued, at least one
        batch if any came); [] if none."""
        out: list[TapEvent] = []
        try:
            batch = self._queue.get(timeout=timeout)
            while True:
                if batch is not None:
                    out.extend(batch)
                else:
                    self._ended += 1
                batch = self._queue.get_nowait()
        except queue.Empty:
            return out

    @property
    def ended(self) -> bool:
        """Every stream ended (the proxies went away)."""
        return self._ended >= len(self.streams)

    def close(self) -> None:
        for stream in self.streams:
            stream.close()
        for thread in self._threads:
            thread.join(timeout=5)
