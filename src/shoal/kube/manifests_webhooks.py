"""The Mutating- and ValidatingWebhookConfiguration, with Istio's selectors.

Injection (`istio-sidecar-injector[-<rev>]`), one webhook per way a pod is selected; every
one also needs the pod's `sidecar.istio.io/inject` not to be `false`:

- default revision: `namespace.` (namespace `istio-injection=enabled`) and `object.`
  (unlabelled namespace, pod `sidecar.istio.io/inject=true`, no `istio.io/rev`);
- a named revision: `rev.namespace.` (namespace `istio.io/rev=<rev>` without
  `istio-injection`) and `rev.object.` (unlabelled namespace, pod `istio.io/rev=<rev>`);
- opt-in `auto.` (inject everywhere): unlabelled namespaces other than the system ones.

So `istio-injection=enabled` beats `istio.io/rev`. Validation (`istio-validator[-<rev>]-<ns>`)
covers CREATE and UPDATE of every kind shoal reads (never their `/status`, so status writes
pass untouched).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from shoal.kube import names
from shoal.kube.inject_rules import INJECT_KEY, SYSTEM_NAMESPACES
from shoal.kube.manifests_crds import plurals_by_group
from shoal.kube.selectors import selector_matches

INJECTION_LABEL = "istio-injection"
REVISION_LABEL = "istio.io/rev"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def _expr(key: str, op: str, *values: str) -> dict[str, Any]:
    out: dict[str, Any] = {"key": key, "operator": op}
    if values:
        out["values"] = list(values)
    return out


def injection_selectors(
    revision: str = "", *, inject_all: bool = False
) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(webhook name prefix, namespaceSelector, objectSelector) of each injection webhook."""
    not_false = _expr(INJECT_KEY, "NotIn", "false")
    unlabelled_ns = [_expr(INJECTION_LABEL, "DoesNotExist"), _expr(REVISION_LABEL, "DoesNotExist")]
    if revision:
        return [
            (
                "rev.namespace.",
                {
                    "matchExpressions": [
                        _expr(REVISION_LABEL, "In", revision),
                        _expr(INJECTION_LABEL, "DoesNotExist"),
                    ]
                },
                {"matchExpressions": [not_false]},
            ),
            (
                "rev.object.",
                {"matchExpressions": unlabelled_ns},
                {"matchExpressions": [not_false, _expr(REVISION_LABEL, "In", revision)]},
            ),
        ]
    out = [
        (
            "namespace.",
            {"matchExpressions": [_expr(INJECTION_LABEL, "In", "enabled")]},
            {"matchExpressions": [not_false]},
        )
    ]
    if inject_all:
        system = (*SYSTEM_NAMESPACES, names.NAMESPACE)
        out.append(
            (
                "auto.",
                {
                    "matchExpressions": [
                        *unlabelled_ns,
                        _expr(NAMESPACE_NAME_LABEL, "NotIn", *system),
                    ]
                },
                {"matchExpressions": [not_false, _expr(REVISION_LABEL, "DoesNotExist")]},
            )
        )
    else:
        out.append(
            (
                "object.",
                {"matchExpressions": unlabelled_ns},
                {
                    "matchExpressions": [
                        _expr(INJECT_KEY, "In", "true"),
                        _expr(REVISION_LABEL, "DoesNotExist"),
                    ]
                },
            )
        )
    return out


def _client(path: str, ca_bundle: str) -> dict[str, Any]:
    config: dict[str, Any] = {
        "service": {
            "name": names.CONTROL_PLANE,
            "namespace": names.NAMESPACE,
            "path": path,
            "port": 443,
        }
    }
    if ca_bundle:
        config["caBundle"] = base64.b64encode(ca_bundle.encode()).decode()
    return config


def _suffix(revision: str) -> str:
    return f"-{revision}" if revision else ""


def mutating_webhook(
    revision: str = "", ca_bundle: str = "", *, inject_all: bool = False
) -> dict[str, Any]:
    """`istio-sidecar-injector[-<rev>]`: CREATE of pods, `/inject`, failurePolicy Fail."""
    webhooks = [
        {
            "name": f"{prefix}sidecar-injector.istio.io",
            "clientConfig": _client(names.INJECT_PATH, ca_bundle),
            "rules": [
                {
                    "operations": ["CREATE"],
                    "apiGroups": [""],
                    "apiVersions": ["v1"],
                    "resources": ["pods"],
                }
            ],
            "namespaceSelector": ns_selector,
            "objectSelector": object_selector,
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "reinvocationPolicy": "Never",
            "timeoutSeconds": 10,
        }
        for prefix, ns_selector, object_selector in injection_selectors(
            revision, inject_all=inject_all
        )
    ]
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {
            "name": f"{names.MUTATING_WEBHOOK}{_suffix(revision)}",
            "labels": {"app": "sidecar-injector", REVISION_LABEL: revision or "default"},
        },
        "webhooks": webhooks,
    }


def validating_webhook(revision: str = "", ca_bundle: str = "") -> dict[str, Any]:
    """`istio-validator[-<rev>]-shoal-system`: CREATE/UPDATE of shoal's kinds, `/validate`.

    failurePolicy Ignore until the CA bundle is known (as Istio installs it), Fail after."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {
            "name": f"{names.VALIDATING_WEBHOOK}{_suffix(revision)}-{names.NAMESPACE}",
            "labels": {"app": "istiod", REVISION_LABEL: revision or "default"},
        },
        "webhooks": [
            {
                "name": f"{'rev.' if revision else ''}validation.istio.io",
                "clientConfig": _client(names.VALIDATE_PATH, ca_bundle),
                "rules": [
                    {
                        "operations": ["CREATE", "UPDATE"],
                        "apiGroups": [group],
                        "apiVersions": ["*"],
                        "resources": plurals,
                        "scope": "*",
                    }
                    for group, plurals in plurals_by_group().items()
                ],
                "failurePolicy": "Fail" if ca_bundle else "Ignore",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 10,
            }
        ],
    }


def selected_webhooks(
    configuration: Mapping[str, Any],
    namespace_labels: Mapping[str, str],
    pod_labels: Mapping[str, str],
) -> list[str]:
    """The webhooks of `configuration` the API server would call for a pod, by their
    selectors (tests and the fake API server use this)."""
    return [
        str(w.get("name"))
        for w in configuration.get("webhooks") or ()
        if selector_matches(w.get("namespaceSelector"), namespace_labels)
        and selector_matches(w.get("objectSelector"), pod_labels)
    ]
