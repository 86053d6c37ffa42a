"""Whether a pod gets a sidecar: Istio's rules, in Istio's order.

The API server first picks the webhook by the MutatingWebhookConfiguration's namespace and
object selectors (manifests_webhooks.py writes Istio's); the webhook then applies
`injection_required` (Istio's `injectRequired`):

1. `hostNetwork: true`: never (capture would change the node's networking);
2. a system namespace (kube-system, kube-public, kube-node-lease, local-path-storage, and
   shoal's own): never;
3. the pod's label `sidecar.istio.io/inject`, else its annotation of that name (the label
   wins): y/yes/true/on inject, any other non-empty value does not, empty falls through;
4. the never-inject selectors, then the always-inject selectors (pod labels);
5. the policy: `enabled` injects what fell through, `disabled` does not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from shoal.kube.objects import KubeObject, annotations_of, flag, labels_of, namespace_of
from shoal.kube.selectors import selector_matches

INJECT_KEY = "sidecar.istio.io/inject"
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", "local-path-storage")
_YES = frozenset({"y", "yes", "true", "on"})


@dataclass(frozen=True)
class InjectionPolicy:
    """The injector's own configuration (Istio's sidecar injector ConfigMap `config`)."""

    policy: Literal["enabled", "disabled"] = "enabled"
    never_inject_selector: Sequence[Mapping[str, Any]] = ()
    always_inject_selector: Sequence[Mapping[str, Any]] = ()
    ignored_namespaces: Sequence[str] = (*SYSTEM_NAMESPACES, "shoal-system")


def injection_required(pod: KubeObject, policy: InjectionPolicy | None = None) -> tuple[bool, str]:
    """(inject?, why): the decision for one pod, by the rules in the module docstring."""
    policy = policy or InjectionPolicy()
    if flag(pod, "spec", "hostNetwork") is True:
        return False, "hostNetwork pod"
    namespace = namespace_of(pod)
    if namespace in policy.ignored_namespaces:
        return False, f"namespace {namespace} is a system namespace"
    labels = labels_of(pod)
    choice = labels.get(INJECT_KEY)
    source = "label"
    if choice is None:
        choice, source = annotations_of(pod).get(INJECT_KEY, ""), "annotation"
    if choice:
        wanted = choice.lower() in _YES
        return wanted, f"{source} {INJECT_KEY}={choice}"
    for selector in policy.never_inject_selector:
        if selector and selector_matches(selector, labels):
            return False, "pod labels match neverInjectSelector"
    for selector in policy.always_inject_selector:
        if selector and selector_matches(selector, labels):
            return True, "pod labels match alwaysInjectSelector"
    return policy.policy == "enabled", f"injection policy {policy.policy}"
