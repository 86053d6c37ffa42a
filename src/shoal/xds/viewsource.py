"""What the ADS server needs from the engine, and nothing more.

The server asks for a proxy's view and, for a name a proxy subscribes to that the view lacks,
what to send instead. It never builds, compares or keeps generations itself (the pipeline in
shoal.engine does), so any engine that answers these two questions can feed it.
"""

from __future__ import annotations

from typing import Protocol

from shoal.generate import PreparedResource, ProxyView
from shoal.model import Proxy


class ViewSource(Protocol):
    def view(self, proxy: Proxy) -> ProxyView:
        """Everything `proxy` should hold now (the same object while nothing it holds
        changed, so a stream can tell "unchanged" by identity)."""
        ...

    def missing(self, type_url: str, name: str) -> PreparedResource | None:
        """What to send for `name` when the view lacks it (None: nothing)."""
        ...
