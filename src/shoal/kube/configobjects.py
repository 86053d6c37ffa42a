"""Istio and shoal custom objects from the API as config changes for the store.

A custom object goes to the same store, validation and last-good rules as a file's document
(`api.Change.object`): an invalid VirtualService applied with `kubectl` (past the validating
webhook) is refused with the field named, and its last good version stays in force. Its
"file" in error messages is `kubernetes:<Kind>/<namespace>/<name>`, which says where to look.

Only what the file source would read is handed on: apiVersion, kind, spec and the metadata a
user writes (name, namespace, labels, annotations). Fields the server maintains
(resourceVersion, managedFields, status, ...) change on every write, also on status writes
that change nothing, and would make every such write look like a config change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shoal.api import Change
from shoal.kube.watchcache import KubeObject, ObjectEvent

PREFIX = "kubernetes:"
# kubectl apply's copy of the object: as large as the object, and never config
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def source_name(kind: str, namespace: str, name: str) -> str:
    return f"{PREFIX}{kind}/{namespace}/{name}"


def parse_source(source: str) -> tuple[str, str, str] | None:
    """(kind, namespace, name) of a `source_name`, or None for a file path."""
    if not source.startswith(PREFIX):
        return None
    parts = source[len(PREFIX) :].split("/")
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None


def config_view(obj: KubeObject) -> dict[str, Any]:
    """The part of a custom object the config store reads (see the module docstring)."""
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    view_meta: dict[str, Any] = {"name": meta.get("name"), "namespace": meta.get("namespace")}
    labels = meta.get("labels")
    if isinstance(labels, Mapping) and labels:
        view_meta["labels"] = dict(labels)
    annotations = meta.get("annotations")
    if isinstance(annotations, Mapping):
        kept = {k: v for k, v in annotations.items() if k != _LAST_APPLIED}
        if kept:
            view_meta["annotations"] = kept
    view: dict[str, Any] = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": view_meta,
    }
    if "spec" in obj:
        view["spec"] = obj["spec"]
    return view


def config_change(kind: str, event: ObjectEvent) -> Change | None:
    """The store change for one watch event of a custom kind; None if nothing it reads moved."""
    namespace, name = event.key
    source = source_name(kind, namespace, name)
    if event.new is None:
        return Change.object(source, None)
    view = config_view(event.new)
    if event.old is not None and config_view(event.old) == view:
        return None
    return Change.object(source, view)
