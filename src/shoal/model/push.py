"""`PushRequest`: what changed between two snapshots, carried with the new one.

The store knows which resources changed (`ConfigDelta`), the registry which instances, the
control plane whether credentials or policy files did; the snapshot builder turns that into
the names later layers act on: which kinds, which resources, which service hosts, which
namespaces. The generator decides from it what to rebuild and the xDS server whom to wake,
instead of comparing whole snapshots. (Istio's `PushRequest` plays the same part.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shoal.api import ConfigDelta, Resource, ResourceKey, fqdn
from shoal.api.destinationrule import DestinationRuleSpec
from shoal.api.virtualservice import VirtualServiceSpec
from shoal.model.snapshot import MeshSnapshot

# kinds that are not config kinds, for changes that do not come from the store
INSTANCE = "Instance"  # registry instances (`shoal up` replicas)
CREDENTIAL = "Credential"  # gateway certificates under secrets/
POLICY_FILE = "PolicyFile"  # local files a policy names (DestinationRule tls, JWKS)
REGISTRY = "RegistryService"  # services of another registry (Kubernetes Services, slices)

# what an endpoint-only change may touch
REGISTRY_KINDS = frozenset({"ServiceEntry", "WorkloadEntry", "Service", INSTANCE, REGISTRY})


@dataclass(frozen=True)
class PushRequest:
    """What changed. `full`: anything may have (the first snapshot, or the set of namespaces
    changed, which changes how short host names resolve): rebuild everything."""

    full: bool = False
    kinds: frozenset[str] = frozenset()
    keys: frozenset[ResourceKey] = frozenset()
    # service hosts whose Service (endpoints included), VirtualServices or DestinationRule
    # changed, appeared or went, and hosts a changed resource names
    hosts: frozenset[str] = frozenset()
    namespaces: frozenset[str] = frozenset()

    @property
    def empty(self) -> bool:
        return not (self.full or self.kinds)

    @property
    def registry_only(self) -> bool:
        """Only ServiceEntries, WorkloadEntries or instances changed (maybe just endpoints)."""
        return not self.full and self.kinds <= REGISTRY_KINDS


NOTHING = PushRequest()


def _named_hosts(resource: Resource) -> list[str]:
    spec = resource.spec
    if isinstance(spec, VirtualServiceSpec):
        return list(spec.hosts)
    if isinstance(spec, DestinationRuleSpec):
        return [spec.host]
    return list(getattr(spec, "hosts", ()))


def _differing(before: Mapping[str, object], after: Mapping[str, object]) -> set[str]:
    # unchanged entries are mostly the same objects (model/build.py), so this is mostly `is`
    out = set(before.keys() ^ after.keys())
    for key, value in after.items():
        old = before.get(key)
        if old is not None and old is not value and old != value:
            out.add(key)
    return out


def push_request(
    previous: MeshSnapshot | None,
    snapshot: MeshSnapshot,
    delta: ConfigDelta,
    *,
    other_kinds: Iterable[str] = (),
) -> PushRequest:
    """What changed from `previous` to `snapshot`, the store's `delta` being the config part
    and `other_kinds` naming the other inputs that changed (INSTANCE, CREDENTIAL, ...)."""
    changed = [*delta.before.values(), *delta.after.values()]
    kinds = frozenset({r.kind for r in changed} | set(other_kinds))
    keys = delta.keys
    namespaces = frozenset(r.meta.namespace for r in changed)
    if previous is None or previous.namespaces != snapshot.namespaces:
        return PushRequest(True, kinds, keys, frozenset(snapshot.services), namespaces)
    hosts = _differing(previous.services, snapshot.services)
    hosts |= _differing(previous.vs_by_host, snapshot.vs_by_host)
    hosts |= _differing(previous.dr_by_host, snapshot.dr_by_host)
    for resource in changed:
        hosts.update(
            fqdn(h, resource.meta.namespace, namespaces=snapshot.namespaces)
            for h in _named_hosts(resource)
        )
    return PushRequest(False, kinds, keys, frozenset(hosts), namespaces)
