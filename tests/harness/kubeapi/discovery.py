"""Discovery documents: ``/api``, ``/apis``, ``/apis/{g}``, ``/api/v1``, ``/apis/{g}/{v}``.

The plain documents (APIVersions, APIGroupList, APIGroup, APIResourceList) and the aggregated
one (``apidiscovery.k8s.io/v2`` APIGroupDiscoveryList) kubectl asks for first. All are built
from the Registry on each request, so a CRD shows up as soon as it is created.
"""

from __future__ import annotations

import re
from typing import Any

from .resources import Registry, ResourceType

Obj = dict[str, Any]
AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


def aggregated_version(accept: str) -> str | None:
    """Which aggregated form the client asked for first ("v2", "v2beta1"), or None."""
    for part in accept.split(","):
        fields = [p.strip() for p in part.split(";")]
        params = dict(p.split("=", 1) for p in fields[1:] if "=" in p)
        if params.get("as") == "APIGroupDiscoveryList" and params.get("g") == "apidiscovery.k8s.io":
            if params.get("v") in ("v2", "v2beta1"):
                return params["v"]
        elif fields[0] in ("application/json", "*/*"):
            return None
    return None


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes version ordering: GA > beta > alpha, higher numbers first."""
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0, version)
    major, stage, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    return ({None: 0, "beta": 1, "alpha": 2}[stage], -major, -minor, version)


def _versions(registry: Registry, group: str) -> list[str]:
    for g, versions in registry.groups():
        if g == group:
            return sorted(versions, key=version_priority)
    return []


def api_versions(server_address: str) -> Obj:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def api_group(registry: Registry, group: str) -> Obj | None:
    versions = _versions(registry, group)
    if not versions:
        return None
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": gvs,
            "preferredVersion": gvs[0]}  # fmt: skip


def api_group_list(registry: Registry) -> Obj:
    groups = [api_group(registry, g) for g, _ in registry.groups() if g]
    for g in groups:
        if g is not None:
            g.pop("kind")
            g.pop("apiVersion")
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def _resource(rt: ResourceType) -> Obj:
    out: Obj = {
        "name": rt.plural,
        "singularName": rt.singular_name,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        out["shortNames"] = list(rt.short_names)
    if rt.categories:
        out["categories"] = list(rt.categories)
    return out


def api_resource_list(registry: Registry, group: str, version: str) -> Obj | None:
    types = registry.in_group_version(group, version)
    if not types:
        return None
    resources = []
    for rt in types:
        resources.append(_resource(rt))
        if rt.status:
            resources.append({"name": f"{rt.plural}/status", "singularName": "",
                              "namespaced": rt.namespaced, "kind": rt.kind,
                              "verbs": ["get", "patch", "update"]})  # fmt: skip
        if rt.scale:
            resources.append({"name": f"{rt.plural}/scale", "singularName": "",
                              "namespaced": rt.namespaced, "group": "autoscaling",
                              "version": "v1", "kind": "Scale",
                              "verbs": ["get", "patch", "update"]})  # fmt: skip
        if rt.kind == "ServiceAccount" and not rt.group:
            resources.append({"name": "serviceaccounts/token", "singularName": "",
                              "namespaced": True, "group": "authentication.k8s.io",
                              "version": "v1", "kind": "TokenRequest",
                              "verbs": ["create"]})  # fmt: skip
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def _aggregated_resource(rt: ResourceType) -> Obj:
    out: Obj = {
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular_name,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        out["shortNames"] = list(rt.short_names)
    if rt.categories:
        out["categories"] = list(rt.categories)
    if rt.status:
        out["subresources"] = [
            {"subresource": "status",
             "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
             "verbs": ["get", "patch", "update"]}
        ]  # fmt: skip
    if rt.scale:
        out.setdefault("subresources", []).append(
            {"subresource": "scale",
             "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
             "verbs": ["get", "patch", "update"]}
        )  # fmt: skip
    return out


def aggregated(registry: Registry, core: bool, version: str) -> Obj:
    """APIGroupDiscoveryList: for ``/api`` (core) the one nameless group, else all others."""
    items = []
    for group, _ in registry.groups():
        if (group == "") != core:
            continue
        versions = []
        for v in _versions(registry, group):
            versions.append({
                "version": v,
                "resources": [_aggregated_resource(rt)
                              for rt in registry.in_group_version(group, v)],
                "freshness": "Current",
            })  # fmt: skip
        items.append({"metadata": {"name": group, "creationTimestamp": None}, "versions": versions})
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": f"apidiscovery.k8s.io/{version}",
        "metadata": {},
        "items": items,
    }
