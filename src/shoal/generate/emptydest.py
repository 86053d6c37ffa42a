"""Weighted destinations without endpoints: make before break while a mesh starts or scales.

Istio sends a weighted destination its share whether or not its cluster has endpoints, so a
canary subset whose first replica has not reached the callers answers 503 for its 10 %.
With MeshConfig `skipEmptyDestinations` (default on) shoal gives such a destination weight 0
in the route (Envoy then splits by the remaining weights), until the cluster has an endpoint;
when every destination of a route is empty the weights stay and Istio's 503 stays.

Only transitions to and from empty touch routes: the set of empty clusters is one of the
routing inputs (reuse.py), endpoint changes that leave it alone stay EDS-only. The route table
records which clusters it relies on having endpoints (`PreparedResource.needs_endpoints`); the
xDS stream sends it only once those clusters' assignments were sent (empty -> first endpoint),
and holds back an assignment that empties a cluster until routes relying on it are replaced
(last endpoint -> empty).

Candidates are EDS clusters (STATIC resolution, or NONE with endpoints) named by a route with
two or more weighted destinations, for every port of the destination's service (the cluster
of a destination without a port depends on the virtual host's port). DNS and passthrough
clusters are never "empty"; an unknown host or subset (a config error, reported) is left as
written.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from types import MappingProxyType

from shoal.api.destinationrule import DestinationRuleSpec
from shoal.api.virtualservice import VirtualServiceSpec
from shoal.generate.names import outbound_cluster
from shoal.model import MeshSnapshot, Service


def _subset_labels(snapshot: MeshSnapshot, service: Service, subset: str) -> dict[str, str] | None:
    """The subset's selector ({} for the whole service), None for an unknown subset."""
    if not subset:
        return {}
    dr_res = snapshot.dr_by_host.get(service.hostname)
    if dr_res is None or not isinstance(dr_res.spec, DestinationRuleSpec):
        return None
    found = next((s for s in dr_res.spec.subsets if s.name == subset), None)
    return dict(found.labels) if found is not None else None


def _uses_eds(service: Service) -> bool:
    if service.resolution in ("DNS", "DNS_ROUND_ROBIN"):
        return False
    return not (service.resolution == "NONE" and not service.endpoints)


# host -> the subsets weighted destinations name on it ("" for the whole service)
WeightedDestinations = Mapping[str, frozenset[str]]


def weighted_destinations(snapshot: MeshSnapshot) -> WeightedDestinations:
    """Every destination of a route with two or more weighted destinations, by host. It
    depends on the VirtualServices and the namespaces only (short names resolve by them), so
    a generation whose push is registry-only takes the previous one's."""
    out: dict[str, set[str]] = {}
    for vs in snapshot.virtual_services:
        spec = vs.spec
        if not isinstance(spec, VirtualServiceSpec):
            continue
        for http in spec.http:
            weighted = [d for d in http.route if d.weight > 0]
            if len(weighted) < 2:
                continue
            for d in weighted:
                host = snapshot.resolve(d.destination.host, vs.meta.namespace)
                out.setdefault(host, set()).add(d.destination.subset)
    return MappingProxyType({h: frozenset(subsets) for h, subsets in out.items()})


def _empty_clusters(snapshot: MeshSnapshot, host: str, subsets: frozenset[str]) -> set[str]:
    service = snapshot.services.get(host)
    if service is None or not _uses_eds(service):
        return set()
    out: set[str] = set()
    for subset in subsets:
        labels = _subset_labels(snapshot, service, subset)
        if labels is None or any(e.matches(labels) for e in service.endpoints):
            continue
        out.update(outbound_cluster(p.number, subset, host) for p in service.ports)
    return out


def empty_destinations(
    snapshot: MeshSnapshot,
    weighted: WeightedDestinations | None = None,
    *,
    previous: frozenset[str] | None = None,
    hosts: Collection[str] | None = None,
) -> frozenset[str]:
    """Names of the clusters of weighted destinations that have no endpoint (none when the
    mesh turned `skipEmptyDestinations` off). With the `previous` generation's set and the
    `hosts` whose services changed since (a registry-only push: VirtualServices, subsets and
    namespaces the same), only those hosts are looked at again: an endpoint change at 1,000
    services costs one service's check, not a walk of every route (~50 ms)."""
    if not snapshot.mesh_config.skip_empty_destinations:
        return frozenset()
    if weighted is None:
        weighted = weighted_destinations(snapshot)
    if previous is None or hosts is None:
        out: set[str] = set()
        for host, subsets in weighted.items():
            out |= _empty_clusters(snapshot, host, subsets)
        return frozenset(out)
    changed = set(hosts)
    kept = {c for c in previous if c.rpartition("|")[2] not in changed}
    for host in changed:
        named = weighted.get(host)
        if named:
            kept |= _empty_clusters(snapshot, host, named)
    return frozenset(kept)
