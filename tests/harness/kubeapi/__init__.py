"""A wire-faithful fake Kubernetes API server for tests (no real one can run here).

Real HTTP/JSON on 127.0.0.1: discovery (plain and aggregated), a global resourceVersion,
CRUD with Kubernetes' metadata, status subresources, finalizers, merge/JSON/strategic-merge
patches, paged lists, watches with history, 410 Expired, bookmarks and watch-list, label and
field selectors, Tables for kubectl, CRD registration, TokenReview/TokenRequest, admission
webhooks over HTTPS, and injectable faults. What it does not emulate: see README
("Fake Kubernetes API server").

- ``KubeAPIServer``: the server on the caller's event loop (``async with``).
- ``KubeAPIThread``: the same on its own thread, for synchronous tests.
- ``write_kubeconfig``: a kubeconfig pointing at either.
"""

from .faults import Fault
from .runner import KubeAPIThread, write_kubeconfig
from .server import KubeAPIServer, Settings

__all__ = ["Fault", "KubeAPIServer", "KubeAPIThread", "Settings", "write_kubeconfig"]
