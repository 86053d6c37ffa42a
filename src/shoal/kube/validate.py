"""Validation of one Istio/shoal object for the validating webhook, with `shoal analyze`'s
messages.

Pure. The object is checked by the same loader `shoal analyze` and the control plane use
(`shoal.api.parse_documents`), so a refusal names the same field and gives the same reason.
File and line are left out (they would be of shoal's own rendering of the object, not of
the user's file; kubectl names the file).

Only the object itself is checked: references to other objects (a VirtualService naming a
subset) depend on what else exists, and `kubectl apply` order must not matter, so those are
the control plane's to report, as Istio's webhook leaves them too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shoal.api import parse_documents
from shoal.api.errors import ConfigError
from shoal.api.kinds import KIND_SPECS
from shoal.kube.objects import KubeObject, mapping, text

# the ObjectMeta fields shoal's model reads or tolerates; the API server adds others
# (managedFields, finalizers, ownerReferences, ...) that say nothing about validity
_META_KEYS = (
    "name",
    "namespace",
    "labels",
    "annotations",
    "resourceVersion",
    "uid",
    "generation",
    "creationTimestamp",
)
SOURCE = "<admission>"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    message: str = ""
    errors: tuple[ConfigError, ...] = ()


def describe(error: ConfigError) -> str:
    """`shoal analyze`'s line for `error` without its FILE:LINE prefix."""
    return str(error).removeprefix(f"{error.file}:{error.line}: ")


def _cleaned(obj: KubeObject, namespace: str) -> dict[str, Any]:
    meta = mapping(obj, "metadata")
    kept: dict[str, Any] = {k: meta[k] for k in _META_KEYS if meta.get(k) is not None}
    if namespace and not kept.get("namespace"):
        kept["namespace"] = namespace  # a CREATE's object may leave it to the URL
    out = {k: v for k, v in obj.items() if k != "metadata"}
    out["metadata"] = kept
    return out


def is_supported(kind: str, group: str) -> bool:
    spec = KIND_SPECS.get(kind)
    return spec is not None and spec.group == group


def validate_object(obj: Mapping[str, Any], namespace: str = "") -> Verdict:
    """Allowed, or refused with every problem `shoal analyze` would report for it."""
    # JSON is YAML: the loader reads it as it reads files, and writing JSON costs a tenth of
    # writing YAML (a pure-Python emitter)
    result = parse_documents(SOURCE, json.dumps(_cleaned(obj, namespace), indent=1))
    errors = tuple(result.errors)
    if not errors:
        return Verdict(True)
    kind = text(obj, "kind")
    lines = "; ".join(describe(e) for e in errors)
    return Verdict(False, f"configuration is invalid: {lines}" if kind else lines, errors)
