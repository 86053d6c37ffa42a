"""Running the fake for synchronous tests: its own event loop on a thread, and kubeconfigs.

``KubeAPIThread`` starts a ``KubeAPIServer`` on a free port and runs every control call on the
server's loop (``api.call(fn, ...)`` or the shortcuts below), so a test never touches the
server's state from another thread. ``write_kubeconfig`` writes the file kubectl, lightkube
and ``shoal control-plane --kubeconfig`` read.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import yaml

from .server import KubeAPIServer

T = TypeVar("T")
Obj = dict[str, Any]


def write_kubeconfig(
    path: Path,
    url: str,
    token: str = "fake-admin-token",
    namespace: str = "default",
    ca_pem: bytes = b"",
) -> Path:
    cluster: Obj = {"server": url}
    if ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": cluster}],
        "users": [{"name": "fake", "user": {"token": token}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake",
                                                  "namespace": namespace}}],
        "current-context": "fake",
        "preferences": {},
    }  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


class KubeAPIThread:
    """The fake API server on a background thread; a context manager."""

    def __init__(self, **server_args: Any) -> None:
        self._args = server_args
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kubeapi", daemon=True)
        self._server: KubeAPIServer | None = None

    def start(self) -> Self:
        self._thread.start()
        self._server = self._run(self._make())
        return self

    async def _make(self) -> KubeAPIServer:
        return await KubeAPIServer(**self._args).start()

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def stop(self) -> None:
        if self._server is not None:
            self._run(self._server.stop())
            self._server = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if not self._loop.is_running():
            self._loop.close()

    def go_away(self) -> None:
        """Stop serving (connections refused, watches cut) but keep every object; `come_back`
        serves them again on the same port, as an API server restarted in place does."""
        self._run(self.server.stop())

    def come_back(self) -> None:
        self._run(self.server.start())

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def server(self) -> KubeAPIServer:
        """The server object: read-only use from the test thread; change it through call()."""
        assert self._server is not None, "not started"
        return self._server

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the server's loop and return its result."""
        fut: Future[T] = Future()

        def run() -> None:
            try:
                fut.set_result(fn(*args, **kwargs))
            except BaseException as e:  # handed to the caller
                fut.set_exception(e)

        self._loop.call_soon_threadsafe(run)
        return fut.result(timeout=30)

    def __getattr__(self, name: str) -> Any:
        """Controls of KubeAPIServer (create, objects, drop_watches, ...) run on its loop;
        plain attributes (url, settings, store, ...) are read directly."""
        attr = getattr(self.server, name)
        if callable(attr):
            return lambda *a, **kw: self.call(attr, *a, **kw)
        return attr

    def kubeconfig(
        self, path: Path, token: str = "fake-admin-token", namespace: str = "default"
    ) -> Path:
        return write_kubeconfig(path, self.server.url, token, namespace, self.server.ca_pem)
