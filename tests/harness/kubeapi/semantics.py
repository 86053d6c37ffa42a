"""What the real server does to an object between the request body and storage.

Metadata the server owns (uid, creationTimestamp, generation, namespace from the URL,
generateName), the status subresource split, the defaults clients rely on (a Service's
clusterIP, a Pod's service account and phase, a Namespace's phase and name label), and the
checks that make the real server answer 400 or 422.
"""

from __future__ import annotations

import datetime
import re
import secrets
import uuid
from typing import Any

from .errors import ApiError
from .objects import clone
from .resources import ResourceType

Obj = dict[str, Any]

_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# Names ServiceAccounts, ConfigMaps and others accept are subdomains; these must be labels.
_DNS_LABEL_KINDS = frozenset({"Namespace", "Service"})
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# Fields that are not "spec": a change to anything else bumps metadata.generation.
_NOT_SPEC = frozenset({"metadata", "status", "apiVersion", "kind"})


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    if not isinstance(meta, dict):
        raise ApiError.bad_request("metadata must be an object")
    return meta


def check_body(rt: ResourceType, body: Any, namespace: str, name: str | None = None) -> Obj:
    """The request body must be an object of this resource's kind, in this namespace."""
    if not isinstance(body, dict):
        raise ApiError.bad_request("the request body must be a JSON object")
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if kind and kind != rt.kind:
        raise ApiError.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({rt.api_version})"
            if api_version and api_version != rt.api_version
            else f"kind {kind!r} does not match the resource {rt.plural!r} (want {rt.kind!r})"
        )
    if api_version and api_version != rt.api_version:
        raise ApiError.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({rt.api_version})"
        )
    obj = clone(body)
    obj["kind"], obj["apiVersion"] = rt.kind, rt.api_version
    meta = _meta(obj)
    if rt.namespaced:
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise ApiError.bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    if name is not None and meta.get("name") and meta["name"] != name:
        raise ApiError.bad_request(
            f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
        )
    if name is not None:
        meta["name"] = name
    return obj


def prepare_create(rt: ResourceType, obj: Obj) -> Obj:
    """Server-owned metadata and defaults for a new object (before admission)."""
    meta = _meta(obj)
    if not meta.get("name"):
        if meta.get("generateName"):
            alphabet = "bcdfghjklmnpqrstvwxz2456789"
            meta["name"] = meta["generateName"] + "".join(
                secrets.choice(alphabet) for _ in range(5)
            )
        else:
            raise ApiError.invalid(
                "name or generateName is required", rt.group, rt.kind, "", "metadata.name"
            )
    name = meta["name"]
    pattern = _DNS_LABEL if rt.kind in _DNS_LABEL_KINDS else _DNS_SUBDOMAIN
    if rt.kind != "TokenReview" and (not pattern.fullmatch(name) or len(name) > 253):
        raise ApiError.invalid(
            f"Invalid value: {name!r}: a lowercase RFC 1123 "
            f"{'label' if pattern is _DNS_LABEL else 'subdomain'} must consist of lower case "
            "alphanumeric characters, '-' or '.'",
            rt.group,
            rt.kind,
            name,
            "metadata.name",
        )
    for drop in ("resourceVersion", "uid", "creationTimestamp", "deletionTimestamp",
                 "deletionGracePeriodSeconds", "selfLink", "managedFields"):  # fmt: skip
        meta.pop(drop, None)
    if rt.generation:
        meta["generation"] = 1
    else:
        meta.pop("generation", None)
    if rt.status:
        obj.pop("status", None)
    _defaults(rt, obj)
    return obj


def stamp(obj: Obj) -> Obj:
    """What is set at storage time (after mutating admission): uid and creationTimestamp."""
    meta = _meta(obj)
    meta["uid"] = str(uuid.uuid4())
    meta["creationTimestamp"] = now()
    return obj


def prepare_update(rt: ResourceType, old: Obj, new: Obj, subresource: str = "") -> Obj:
    """The object an update stores: server-owned fields from ``old``; with a status
    subresource, the main resource keeps the old status and ``/status`` only the new status."""
    if subresource == "status":
        out = clone(old)
        if "status" in new:
            out["status"] = clone(new["status"])
        else:
            out.pop("status", None)
        return out
    out = clone(new)
    meta, old_meta = _meta(out), old.get("metadata") or {}
    for owned in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                  "namespace", "name", "generation"):  # fmt: skip
        if owned in old_meta:
            meta[owned] = clone(old_meta[owned])
        else:
            meta.pop(owned, None)
    meta.pop("managedFields", None)
    if rt.status:
        if "status" in old:
            out["status"] = clone(old["status"])
        else:
            out.pop("status", None)
    if old_meta.get("deletionTimestamp"):
        added = set(meta.get("finalizers") or ()) - set(old_meta.get("finalizers") or ())
        if added:
            raise ApiError.invalid(
                "Forbidden: no new finalizers can be added if the object is being deleted, "
                f"found new finalizers {sorted(added)!r}",
                rt.group,
                rt.kind,
                meta.get("name", ""),
                "metadata.finalizers",
            )
    _defaults(rt, out, old)
    if "generation" in old_meta and _spec(out) != _spec(old):
        meta["generation"] = int(old_meta["generation"]) + 1
    return out


def _spec(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in _NOT_SPEC}


class ClusterIPs:
    """Hands out Service cluster IPs from 10.96.0.0/12 like the real allocator (no traffic
    ever goes to them in tests; they only have to be unique)."""

    def __init__(self) -> None:
        self._next = 10

    def take(self) -> str:
        n = self._next
        self._next += 1
        return f"10.96.{n // 250}.{n % 250 + 1}"


CLUSTER_IPS = ClusterIPs()


def _defaults(rt: ResourceType, obj: Obj, old: Obj | None = None) -> None:
    meta = obj["metadata"]
    if rt.kind == "Namespace" and not rt.group:
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        if old is None:
            obj["status"] = {"phase": "Active"}
    elif rt.kind == "Service" and not rt.group:
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        old_spec = (old or {}).get("spec") or {}
        if spec["type"] != "ExternalName":
            if not spec.get("clusterIP"):
                spec["clusterIP"] = old_spec.get("clusterIP") or CLUSTER_IPS.take()
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            if "port" in port:
                port.setdefault("targetPort", port["port"])
        if old is None:
            obj["status"] = {"loadBalancer": {}}
    elif rt.kind == "Pod" and not rt.group:
        spec = obj.setdefault("spec", {})
        spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("schedulerName", "default-scheduler")
        for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
            c.setdefault("imagePullPolicy", "IfNotPresent")
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            for p in c.get("ports") or []:
                p.setdefault("protocol", "TCP")
        if old is None:
            obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    elif rt.kind == "Deployment" and rt.group == "apps":
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault(
            "strategy",
            {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
        )
    elif rt.kind == "Secret" and not rt.group:
        if not obj.get("type"):
            obj["type"] = "Opaque"
    elif rt.kind == "CustomResourceDefinition":
        _crd_status(obj)


def _crd_status(crd: Obj) -> None:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, plural = spec.get("group", ""), names.get("plural", "")
    name = crd["metadata"]["name"]
    if name != f"{plural}.{group}":
        raise ApiError.invalid(
            f'Invalid value: {name!r}: must be spec.names.plural+"."+spec.group',
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            name,
            "metadata.name",
        )
    if not spec.get("versions") or not names.get("kind"):
        raise ApiError.invalid(
            "Required value: spec.versions and spec.names.kind must be set",
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            name,
            "spec",
        )
    accepted = dict(names)
    accepted.setdefault("singular", names["kind"].lower())
    accepted.setdefault("listKind", f"{names['kind']}List")
    stamp_time = now()
    crd["status"] = {
        "acceptedNames": accepted,
        "storedVersions": [v["name"] for v in spec["versions"] if v.get("storage")],
        "conditions": [
            {"type": t, "status": "True", "reason": r, "message": m,
             "lastTransitionTime": stamp_time}
            for t, r, m in (
                ("NamesAccepted", "NoConflicts", "no conflicts found"),
                ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            )
        ],
    }  # fmt: skip
