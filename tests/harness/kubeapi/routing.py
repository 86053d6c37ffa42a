"""URL paths of the Kubernetes REST API, parsed into what a request is about.

``/api/v1/...`` is the core group, ``/apis/{group}/{version}/...`` the others; below the
group-version: ``{plural}[/{name}[/{subresource}]]`` for cluster-scoped resources and lists
across namespaces, ``namespaces/{ns}/{plural}[/{name}[/{subresource}]]`` for namespaced ones,
and the deprecated ``watch/`` prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ApiError
from .resources import Registry, ResourceType


@dataclass(frozen=True)
class Target:
    rt: ResourceType
    namespace: str | None  # None: a cluster-scoped object, or a list across namespaces
    name: str | None
    subresource: str = ""
    legacy_watch: bool = False


@dataclass(frozen=True)
class GroupVersion:
    group: str
    version: str | None  # None: /apis/{group} or /api


def parse(registry: Registry, path: str) -> Target | GroupVersion | None:
    """None for paths outside ``/api`` and ``/apis``; raises 404 for unknown resources."""
    segs = [s for s in path.split("/") if s]
    if not segs or segs[0] not in ("api", "apis"):
        return None
    if segs[0] == "api":
        if len(segs) == 1:
            return GroupVersion("", None)
        group, version, rest = "", segs[1], segs[2:]
    else:
        if len(segs) == 1:
            return GroupVersion("*", None)
        if len(segs) == 2:
            return GroupVersion(segs[1], None)
        group, version, rest = segs[1], segs[2], segs[3:]
    if not rest:
        return GroupVersion(group, version)
    legacy = False
    if rest[0] == "watch":
        legacy, rest = True, rest[1:]
        if not rest:
            raise ApiError.no_route()
    if rest[0] == "namespaces" and len(rest) >= 3:
        rt = registry.lookup(group, version, rest[2])
        if rt is not None and rt.namespaced:
            if len(rest) > 5:
                raise ApiError.no_route()
            return Target(rt, rest[1], rest[3] if len(rest) > 3 else None,
                          rest[4] if len(rest) > 4 else "", legacy)  # fmt: skip
    rt = registry.lookup(group, version, rest[0])
    if rt is None or len(rest) > 3:
        raise ApiError.no_route()
    if rt.namespaced and len(rest) > 1:
        # /api/v1/pods/x: namespaced objects are only reachable through their namespace.
        raise ApiError.no_route()
    return Target(rt, None, rest[1] if len(rest) > 1 else None,
                  rest[2] if len(rest) > 2 else "", legacy)  # fmt: skip
