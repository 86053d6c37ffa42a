"""One open watch: a queue the store feeds and a coroutine that writes it as JSON lines.

The stream ends cleanly at ``timeoutSeconds`` (the client re-watches from its last RV), sends
BOOKMARKs at the server's bookmark interval when the client allowed them, and can be made to
end, fail with an ERROR event (410 Expired) or drop the connection without a clean end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .resources import ResourceType

Obj = dict[str, Any]
_END, _ABORT = "END", "ABORT"


def bookmark(rt: ResourceType, rv: int, initial_end: bool = False) -> Obj:
    meta: Obj = {"resourceVersion": str(rv), "creationTimestamp": None}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}


class WatchStream:
    def __init__(
        self,
        rt: ResourceType,
        render: Callable[[str, Obj], bytes],
        current_rv: Callable[[], int],
    ) -> None:
        self.rt = rt
        self._render = render
        self._current_rv = current_rv
        self._queue: asyncio.Queue[tuple[str, Obj]] = asyncio.Queue()
        self.sent = 0

    # Sink
    def deliver(self, type_: str, obj: Obj) -> None:
        self._queue.put_nowait((type_, obj))

    def end(self) -> None:
        self._queue.put_nowait((_END, {}))

    def abort(self) -> None:
        self._queue.put_nowait((_ABORT, {}))

    def fail(self, status: Obj) -> None:
        self._queue.put_nowait(("ERROR", status))
        self.end()

    async def run(
        self,
        request: web.Request,
        end_after: float | None,
        bookmark_interval: float | None,
    ) -> web.StreamResponse:
        """Write events until ``end_after`` seconds (the watch's timeoutSeconds) or told to end."""
        resp = web.StreamResponse(
            headers={"Content-Type": "application/json", "Cache-Control": "no-cache, private"}
        )
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + end_after if end_after else None
        next_bookmark = loop.time() + bookmark_interval if bookmark_interval else None
        while True:
            waits = [t for t in (deadline, next_bookmark) if t is not None]
            wait = max(0.0, min(waits) - loop.time()) if waits else None
            try:
                type_, obj = await asyncio.wait_for(self._queue.get(), wait)
            except TimeoutError:
                now = loop.time()
                if deadline is not None and now >= deadline:
                    break
                if next_bookmark is not None and bookmark_interval:
                    next_bookmark = now + bookmark_interval
                    type_, obj = "BOOKMARK", bookmark(self.rt, self._current_rv())
                else:
                    continue
            if type_ == _END:
                break
            if type_ == _ABORT:
                # No terminating chunk: the client sees the connection cut mid-stream.
                if request.transport is not None:
                    request.transport.abort()
                return resp
            line = b'{"type":"%s","object":%s}\n' % (type_.encode(), self._render(type_, obj))
            try:
                await resp.write(line)
            except (ConnectionError, RuntimeError):
                return resp
            self.sent += 1
        with contextlib.suppress(ConnectionError, RuntimeError):
            await resp.write_eof()
        return resp
