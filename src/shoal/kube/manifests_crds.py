"""CustomResourceDefinitions for every kind shoal reads (`shoal.api.kinds`).

One CRD per kind, at every version Istio serves it (networking: v1, v1beta1, v1alpha3;
security: v1, v1beta1; shoal.dev: v1alpha1), the first stored. The schema is structural with
`x-kubernetes-preserve-unknown-fields` on `spec` and `status`: the validating webhook
(validate.py) checks `spec` with shoal's own models, which name the field and the reason,
something an OpenAPI schema error would not.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from shoal.api.kinds import KIND_SPECS, KindSpec
from shoal.kube.resources import crd_plural

# Istio's short names and categories, so `kubectl get vs` works as with Istio
SHORT_NAMES = MappingProxyType(
    {
        "VirtualService": ("vs",),
        "DestinationRule": ("dr",),
        "ServiceEntry": ("se",),
        "WorkloadEntry": ("we",),
        "Gateway": ("gw",),
        "PeerAuthentication": ("pa",),
        "AuthorizationPolicy": ("ap",),
        "RequestAuthentication": ("ra",),
    }
)
_PRINTER_COLUMNS = (
    MappingProxyType({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}),
)


def _categories(spec: KindSpec) -> list[str]:
    group = spec.group.replace(".", "-")
    return ["istio-io", group] if spec.group.endswith("istio.io") else ["shoal", group]


def _schema() -> dict[str, Any]:
    open_object = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "openAPIV3Schema": {
            "type": "object",
            "properties": {"spec": dict(open_object), "status": dict(open_object)},
        }
    }


def crd(spec: KindSpec) -> dict[str, Any]:
    """The CRD of one kind."""
    plural = crd_plural(spec.kind)
    names: dict[str, Any] = {
        "kind": spec.kind,
        "listKind": f"{spec.kind}List",
        "plural": plural,
        "singular": spec.kind.lower(),
        "categories": _categories(spec),
    }
    if spec.kind in SHORT_NAMES:
        names["shortNames"] = list(SHORT_NAMES[spec.kind])
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{spec.group}",
            "labels": {"app.kubernetes.io/part-of": "shoal"},
        },
        "spec": {
            "group": spec.group,
            "scope": "Namespaced",
            "names": names,
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": i == 0,
                    "schema": _schema(),
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [dict(c) for c in _PRINTER_COLUMNS],
                }
                for i, version in enumerate(spec.versions)
            ],
        },
    }


def crds() -> list[dict[str, Any]]:
    """Every CRD, ordered by group then kind (stable output)."""
    return [crd(s) for s in sorted(KIND_SPECS.values(), key=lambda s: (s.group, s.kind))]


def plurals_by_group() -> dict[str, list[str]]:
    """group -> the plurals of its kinds (the webhooks' and the ClusterRole's rules)."""
    out: dict[str, list[str]] = {}
    for spec in sorted(KIND_SPECS.values(), key=lambda s: (s.group, s.kind)):
        out.setdefault(spec.group, []).append(crd_plural(spec.kind))
    return out
