"""Which services a proxy gets config for: `exportTo` and Sidecar `egress` hosts.

Istio's defaults: a service is visible everywhere unless its ServiceEntry says `exportTo` (or,
when it does not, MeshConfig `defaultServiceExportTo` does: `.` = its own namespace, `*` =
everywhere, `~` = nowhere, or namespace names); a Sidecar's `egress[].hosts`
(`namespace/dnsName`; namespace `*` any, `.` the proxy's own, `~` none; dnsName `*`, `*.suffix`
or exact) narrows it further. A proxy that sees fewer services gets fewer clusters, endpoints
and virtual hosts — and is not pushed to when something it cannot see changes.

`visible` is None when nothing restricts the proxy (the shared, unfiltered maps apply).
"""

from __future__ import annotations

from collections.abc import Sequence

from shoal.api import Resource
from shoal.api.sidecar import SidecarSpec
from shoal.generate import outbound_policy
from shoal.generate.names import parse_outbound
from shoal.generate.prepared import PreparedResource
from shoal.model import MeshSnapshot, Proxy, Service

Scope = frozenset[str] | None


def _exported(service: Service, namespace: str, default: Sequence[str]) -> bool:
    to = service.export_to or default
    if not to or "*" in to:
        return True
    return namespace in to or ("." in to and service.namespace == namespace)


def _host_matches(pattern: str, host: str) -> bool:
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return pattern == host


def _ns_matches(pattern: str, service_ns: str, proxy_ns: str) -> bool:
    if pattern == "*":
        return True
    if pattern == "~":
        return False
    return service_ns == (proxy_ns if pattern == "." else pattern)


def scope_key(snapshot: MeshSnapshot, proxy: Proxy) -> tuple[str, Resource | None]:
    """What the visible set depends on: the proxy's namespace and its Sidecar. The Sidecar
    by value, not identity: memos keyed by this outlive the snapshot (generate/reuse.py)."""
    sidecar = outbound_policy.sidecar_for(snapshot, proxy) if proxy.type == "sidecar" else None
    return (proxy.namespace, sidecar)


def visible(snapshot: MeshSnapshot, proxy: Proxy) -> Scope:
    sidecar = outbound_policy.sidecar_for(snapshot, proxy) if proxy.type == "sidecar" else None
    patterns: list[tuple[str, str]] | None = None
    if sidecar is not None:
        assert isinstance(sidecar.spec, SidecarSpec)
        if sidecar.spec.egress:
            patterns = [
                (h.partition("/")[0], h.partition("/")[2])
                for listener in sidecar.spec.egress
                for h in listener.hosts
            ]
    ns = proxy.namespace
    restricted = patterns is not None
    names = []
    default_export = snapshot.mesh_config.default_service_export_to
    for service in snapshot.services.values():
        if not _exported(service, ns, default_export):
            restricted = True
            continue
        if patterns is not None and not any(
            _ns_matches(p_ns, service.namespace, ns) and _host_matches(p_host, service.hostname)
            for p_ns, p_host in patterns
        ):
            continue
        names.append(service.hostname)
    return frozenset(names) if restricted else None


def narrow(
    resources: dict[str, PreparedResource], scope: frozenset[str]
) -> dict[str, PreparedResource]:
    """Keep the outbound resources of visible services (and everything not outbound)."""
    out = {}
    for name, res in resources.items():
        parsed = parse_outbound(name)
        if parsed is None or parsed[2] in scope:
            out[name] = res
    return out
