"""The fake API server's resource types: built-in kinds and the ones CRDs register.

A ``ResourceType`` is what discovery advertises and what the URL router resolves
(``/apis/{group}/{version}/{plural}``). Built-ins are fixed; creating a
CustomResourceDefinition registers one type per served version, deleting it removes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    # Subresources: "status" splits status writes from the rest (see store.py).
    status: bool = False
    # /scale: (spec replicas path, status replicas path, selector path or "" for spec.selector)
    scale: tuple[str, str, str] | None = None
    # metadata.generation kept (bumped on changes outside metadata and status).
    generation: bool = False
    # Stored but never kept (TokenReview): a create answers and forgets.
    ephemeral: bool = False
    # Extra printer columns: (name, type, JSON path without the leading dot), for Tables.
    columns: tuple[tuple[str, str, str], ...] = ()
    from_crd: bool = field(default=False, compare=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def key(self) -> tuple[str, str]:
        """Storage key: objects are shared across versions of the same group and plural."""
        return (self.group, self.plural)

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


def _rt(
    group: str,
    version: str,
    plural: str,
    kind: str,
    namespaced: bool = True,
    **kw: Any,
) -> ResourceType:
    return ResourceType(group, version, plural, kind, namespaced, **kw)


_SCALE = ("spec.replicas", "status.replicas", "")

BUILTINS: tuple[ResourceType, ...] = (
    _rt("", "v1", "namespaces", "Namespace", False, short_names=("ns",), status=True,
        columns=(("Status", "string", "status.phase"),)),
    _rt("", "v1", "services", "Service", short_names=("svc",), categories=("all",), status=True,
        columns=(("Type", "string", "spec.type"), ("Cluster-IP", "string", "spec.clusterIP"))),
    _rt("", "v1", "pods", "Pod", short_names=("po",), categories=("all",), status=True,
        columns=(("Status", "string", "status.phase"), ("IP", "string", "status.podIP"))),
    _rt("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
    _rt("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    _rt("", "v1", "secrets", "Secret", columns=(("Type", "string", "type"),)),
    _rt("", "v1", "events", "Event", short_names=("ev",),
        columns=(("Reason", "string", "reason"), ("Message", "string", "message"))),
    _rt("", "v1", "endpoints", "Endpoints", short_names=("ep",)),
    _rt("", "v1", "nodes", "Node", False, short_names=("no",), status=True),
    _rt("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice",
        columns=(("AddressType", "string", "addressType"),)),
    _rt("events.k8s.io", "v1", "events", "Event", short_names=("ev",),
        columns=(("Reason", "string", "reason"), ("Note", "string", "note"))),
    _rt("apps", "v1", "deployments", "Deployment", short_names=("deploy",),
        categories=("all",), status=True, generation=True, scale=_SCALE,
        columns=(("Replicas", "integer", "spec.replicas"),)),
    _rt("apps", "v1", "replicasets", "ReplicaSet", short_names=("rs",), categories=("all",),
        status=True, generation=True, scale=_SCALE),
    _rt("coordination.k8s.io", "v1", "leases", "Lease",
        columns=(("Holder", "string", "spec.holderIdentity"),)),
    _rt("authentication.k8s.io", "v1", "tokenreviews", "TokenReview", False,
        verbs=("create",), ephemeral=True),
    _rt("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
        False, short_names=("crd", "crds"), status=True, generation=True),
    _rt("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration", False, generation=True),
    _rt("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration", False, generation=True),
    _rt("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    _rt("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    _rt("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _rt("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
)  # fmt: skip

# Preferred versions and the order groups are listed in discovery (core first, as the real one).
_GROUP_ORDER = (
    "",
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "rbac.authorization.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
)


class Registry:
    """Every resource type the server knows, indexed the ways the router and discovery need."""

    def __init__(self) -> None:
        self._types: list[ResourceType] = list(BUILTINS)

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(self._types)

    def groups(self) -> list[tuple[str, list[str]]]:
        """(group, versions in preference order), core group included, in discovery order."""
        found: dict[str, list[str]] = {}
        for rt in self._types:
            versions = found.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
        order = {g: i for i, g in enumerate(_GROUP_ORDER)}
        return sorted(found.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for rt in self._types if rt.group == group and rt.version == version]

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        for rt in self._types:
            if rt.group == group and rt.version == version and rt.plural == plural:
                return rt
        return None

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        for rt in self._types:
            if rt.api_version == api_version and rt.kind == kind:
                return rt
        return None

    def by_key(self, key: tuple[str, str]) -> list[ResourceType]:
        return [rt for rt in self._types if rt.key == key]

    def register_crd(self, crd: dict[str, Any]) -> list[ResourceType]:
        """Register (or re-register) the served versions of a CRD; returns the new types."""
        spec = crd.get("spec") or {}
        group = spec.get("group", "")
        names = spec.get("names") or {}
        self.unregister_crd(group, names.get("plural", ""))
        added = []
        for v in spec.get("versions") or []:
            if not v.get("served", True):
                continue
            cols = tuple(
                (c["name"], c.get("type", "string"), c["jsonPath"].lstrip("."))
                for c in v.get("additionalPrinterColumns") or []
                if c.get("jsonPath") and c.get("name")
            )
            rt = ResourceType(
                group=group,
                version=v["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                singular=names.get("singular", ""),
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                status="status" in (v.get("subresources") or {}),
                scale=_crd_scale((v.get("subresources") or {}).get("scale")),
                columns=cols,
                generation=True,
                from_crd=True,
            )
            added.append(rt)
        self._types.extend(added)
        return added

    def unregister_crd(self, group: str, plural: str) -> None:
        self._types = [
            rt
            for rt in self._types
            if not (rt.from_crd and rt.group == group and rt.plural == plural)
        ]


def _crd_scale(spec: dict[str, Any] | None) -> tuple[str, str, str] | None:
    if not spec or not spec.get("specReplicasPath"):
        return None
    return (
        spec["specReplicasPath"].lstrip("."),
        spec.get("statusReplicasPath", ".status.replicas").lstrip("."),
        spec.get("labelSelectorPath", "").lstrip("."),
    )
