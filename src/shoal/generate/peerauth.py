"""PeerAuthentication: which mTLS mode a workload's inbound port is in, as Istio decides it.

Istio's rules (pilot/pkg/security/authn, `policyApplier` and `ComposePeerAuthentication`):
the workload-level policy (a `selector` matching the workload, in its namespace) wins over
the namespace-level one (no selector), which wins over the mesh-level one (no selector, in
the root namespace `istio-system`). Several at one level: the oldest wins; files carry no
timestamps, so shoal takes the first by name. A mode of UNSET inherits from the level
above; with nothing set anywhere the mode is PERMISSIVE. `portLevelMtls` (workload level
only) overrides the mode for that workload port, UNSET again meaning "inherit".
"""

from __future__ import annotations

from shoal.api import Resource
from shoal.api.peerauthentication import MtlsMode, PeerAuthenticationSpec
from shoal.model import MeshSnapshot, Proxy

ROOT_NAMESPACE = "istio-system"
DEFAULT_MODE: MtlsMode = "PERMISSIVE"


def _spec(res: Resource) -> PeerAuthenticationSpec:
    assert isinstance(res.spec, PeerAuthenticationSpec)
    return res.spec


def _selects(spec: PeerAuthenticationSpec, proxy: Proxy) -> bool:
    labels = spec.selector.match_labels if spec.selector else {}
    return all(proxy.labels.get(k) == v for k, v in labels.items())


def applicable(snapshot: MeshSnapshot, proxy: Proxy) -> list[PeerAuthenticationSpec]:
    """The policies that apply, most specific first: workload, namespace, mesh (at most one
    of each)."""
    workload = namespace = mesh = None
    for res in snapshot.peer_authentications:
        spec = _spec(res)
        has_selector = spec.selector is not None and bool(spec.selector.match_labels)
        ns = res.meta.namespace
        if ns == proxy.namespace and has_selector and _selects(spec, proxy):
            workload = workload or spec
        elif ns == proxy.namespace and not has_selector:
            namespace = namespace or spec
        elif ns == ROOT_NAMESPACE and not has_selector:
            mesh = mesh or spec
    return [p for p in (workload, namespace, mesh) if p is not None]


def mtls_mode(snapshot: MeshSnapshot, proxy: Proxy, port: int | None) -> MtlsMode:
    """The effective mode of `proxy`'s workload port `port` (None: the workload's default)."""
    policies = applicable(snapshot, proxy)
    if policies and port is not None:
        level = policies[0].port_level_mtls.get(port) if policies[0].selector else None
        if level is not None and level.mode != "UNSET":
            return level.mode
    for policy in policies:
        if policy.mtls is not None and policy.mtls.mode != "UNSET":
            return policy.mtls.mode
    return DEFAULT_MODE
