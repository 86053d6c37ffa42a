"""The status of Gateway API objects on Kubernetes, in their own shape (`status.parents[]` on
routes, `conditions` and `listeners[]` on Gateways), for kube/status.py to write.

Computed like `shoal analyze` does for files (api/gatewayapi/attach.py), over the accepted
config with the versions the informers hold of the Gateway API objects (a refused route is
not in the accepted config, yet its status must say why: NoMatchingParent, BackendNotFound,
RefNotPermitted, ...). Timestamps are left empty; the writer stamps them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shoal.api import Resource
from shoal.api.gatewayapi import GATEWAY_KIND, ROUTE_KINDS
from shoal.api.gatewayapi.attach import gateway_api_status
from shoal.api.gatewayapi.gateway import GatewaySpec
from shoal.api.gatewayapi.kubestatus import gateway_status_body, route_status_body
from shoal.api.load import parse_object
from shoal.api.validate import service_ports
from shoal.kube.configobjects import config_view, source_name
from shoal.kube.watchcache import KubeObject
from shoal.model.snapshot import Service

Key = tuple[str, str, str]
KINDS = frozenset({GATEWAY_KIND, *ROUTE_KINDS})


def _generation(obj: KubeObject) -> int:
    meta = obj.get("metadata")
    value = meta.get("generation") if isinstance(meta, Mapping) else None
    return value if isinstance(value, int) else 0


def gateway_api_bodies(
    objects: Iterable[tuple[Key, KubeObject]],
    accepted: Sequence[Resource],
    services: Mapping[str, Service],
) -> dict[Key, dict[str, Any]]:
    """key -> the status body of every Gateway and route among `objects` that parses."""
    held: dict[Key, tuple[KubeObject, Resource]] = {}
    for key, obj in objects:
        if key[0] not in KINDS:
            continue
        resource = parse_object(source_name(*key), config_view(obj)).resource
        if resource is not None:
            held[key] = (obj, resource)
    if not held:
        return {}
    resources = [r for r in accepted if r.key not in held] + [r for _, r in held.values()]
    known = {host: [p.number for p in svc.ports] for host, svc in services.items()}
    status = gateway_api_status(resources, service_ports(resources, known))
    out: dict[Key, dict[str, Any]] = {}
    for key, (obj, resource) in held.items():
        generation = _generation(obj)
        route = status.routes.get(key)
        gateway = status.gateways.get(key)
        if route is not None:
            out[key] = route_status_body(route, resource.meta.namespace, generation, "")
        elif gateway is not None and isinstance(resource.spec, GatewaySpec):
            out[key] = gateway_status_body(gateway, resource.spec, generation, "")
    return out
