"""The control plane's identity in the cluster and the least rights it needs.

ClusterRole (every namespace): read the inputs (namespaces, services, endpointslices, pods,
serviceaccounts, every shoal/Istio kind); write the status of those kinds; write the
`istio-ca-root-cert` ConfigMap into each namespace; record Events; check workload tokens
(TokenReview). Role (shoal-system only): the leader-election Lease. Nothing else: the webhook
configurations get their `caBundle` from `shoal install`, so the control plane never writes
them, and it reads no Secrets (the CA arrives mounted).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from shoal.kube import names
from shoal.kube.manifests_crds import plurals_by_group
from shoal.kube.resources import config_types

_READ = ("get", "list", "watch")
_LABELS = MappingProxyType({"app": names.CONTROL_PLANE, "app.kubernetes.io/part-of": "shoal"})


def _meta(name: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(_LABELS)}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def service_account() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(names.CONTROL_PLANE, names.NAMESPACE),
    }


def cluster_role() -> dict[str, Any]:
    crd_rules = []
    groups = plurals_by_group()
    # Gateway API: the Gateway API project's CRDs, read and given status like shoal's own
    for rt in config_types():
        if rt.group not in groups or rt.plural not in groups[rt.group]:
            groups.setdefault(rt.group, []).append(rt.plural)
    for group, plurals in groups.items():
        crd_rules.append({"apiGroups": [group], "resources": plurals, "verbs": list(_READ)})
        crd_rules.append(
            {
                "apiGroups": [group],
                "resources": [f"{p}/status" for p in plurals],
                "verbs": ["get", "update", "patch"],
            }
        )
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": _meta(names.CONTROL_PLANE),
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["namespaces", "services", "pods", "serviceaccounts"],
                "verbs": list(_READ),
            },
            {
                "apiGroups": ["discovery.k8s.io"],
                "resources": ["endpointslices"],
                "verbs": list(_READ),
            },
            *crd_rules,
            # the root certificate into every namespace (only the leader writes)
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "verbs": ["get", "create", "update"],
            },
            {
                "apiGroups": ["", "events.k8s.io"],
                "resources": ["events"],
                "verbs": ["create", "patch"],
            },
            {
                "apiGroups": ["authentication.k8s.io"],
                "resources": ["tokenreviews"],
                "verbs": ["create"],
            },
        ],
    }


def _subjects() -> list[dict[str, str]]:
    return [{"kind": "ServiceAccount", "name": names.CONTROL_PLANE, "namespace": names.NAMESPACE}]


def cluster_role_binding() -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _meta(names.CONTROL_PLANE),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": names.CONTROL_PLANE,
        },
        "subjects": _subjects(),
    }


def role() -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(names.CONTROL_PLANE, names.NAMESPACE),
        "rules": [
            {
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "verbs": ["get", "create", "update"],
            }
        ],
    }


def role_binding() -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(names.CONTROL_PLANE, names.NAMESPACE),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": names.CONTROL_PLANE,
        },
        "subjects": _subjects(),
    }
