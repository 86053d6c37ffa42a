"""`shoal diff`: what a config change would do to each proxy, computed, never pushed.

Pure. Two generations of the same pipeline (engine/pipeline.py) -- the one in force and the
one the change would make (`Pipeline.fork().apply(changes)`) -- are asked for each proxy's
view, and the views compared resource by resource: a name only after is added, only before
removed, in both with different serialized bytes changed (generation is deterministic, so
equal bytes mean Envoy would get the same resource). A proxy with no difference is not
touched: the control plane would push it nothing.

Offline there are no connected proxies: `local_proxies` makes the ones `shoal up` would run
(one sidecar per LocalWorkload, one router per LocalGateway), with the node metadata its
agent would send (ports are placeholders, the same before and after).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from envoy.config.route.v3 import route_pb2
from google.protobuf import any_pb2

from shoal.api import ConfigError, Resource
from shoal.api.localgateway import LocalGatewaySpec
from shoal.api.localworkload import LocalWorkloadSpec
from shoal.generate import ConfigGenerator
from shoal.generate.prepared import CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET
from shoal.model import Proxy
from shoal.model.proxy import parse_proxy

# in the order Envoy takes them (make before break), with istioctl's short names
TYPES = (("cds", CLUSTER), ("eds", ENDPOINT), ("lds", LISTENER), ("rds", ROUTE), ("sds", SECRET))


@dataclass(frozen=True)
class TypeDiff:
    type: str  # cds, eds, lds, rds, sds
    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    # a changed route table: its virtual hosts added (+), changed (~) and removed (-)
    details: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "type": self.type,
            "added": list(self.added),
            "changed": list(self.changed),
            "removed": list(self.removed),
            "details": {name: list(lines) for name, lines in self.details},
        }


@dataclass(frozen=True)
class ProxyDiff:
    node: str
    workload: str
    namespace: str
    types: tuple[TypeDiff, ...]  # only types with a difference

    @property
    def touched(self) -> bool:
        return bool(self.types)

    def to_json(self) -> dict[str, object]:
        return {
            "node": self.node,
            "workload": self.workload,
            "namespace": self.namespace,
            "touched": self.touched,
            "types": [t.to_json() for t in self.types],
        }


@dataclass(frozen=True)
class ConfigDiff:
    proxies: tuple[ProxyDiff, ...]  # every proxy considered, touched or not
    new_errors: tuple[ConfigError, ...]  # errors the change brings (its resources left out)
    fixed_errors: tuple[ConfigError, ...]  # errors in force now that it removes

    def to_json(self) -> dict[str, object]:
        return {
            "proxies": [p.to_json() for p in self.proxies],
            "touched": sum(1 for p in self.proxies if p.touched),
            "new_errors": [e.to_json() for e in self.new_errors],
            "fixed_errors": [e.to_json() for e in self.fixed_errors],
        }


def proxy_diff(
    before: ConfigGenerator | None, after: ConfigGenerator | None, proxy: Proxy
) -> ProxyDiff:
    """None: the proxy does not exist on that side (a workload the change adds or removes)."""
    old = before.view(proxy) if before is not None else None
    new = after.view(proxy) if after is not None else None
    types = []
    for short, type_url in TYPES:
        was = old.of(type_url) if old is not None else {}
        now = new.of(type_url) if new is not None else {}
        if was is now:  # a shared, unchanged map (the common case)
            continue
        added = tuple(sorted(n for n in now if n not in was))
        removed = tuple(sorted(n for n in was if n not in now))
        changed = tuple(sorted(n for n in now if n in was and now[n].any_bytes != was[n].any_bytes))
        if added or changed or removed:
            details: tuple[tuple[str, tuple[str, ...]], ...] = ()
            if type_url == ROUTE:
                details = tuple((n, _vhosts(was[n].any_bytes, now[n].any_bytes)) for n in changed)
            types.append(TypeDiff(short, added, changed, removed, details))
    return ProxyDiff(proxy.node_id, proxy.workload_name, proxy.namespace, tuple(types))


def _vhost_map(any_bytes: bytes) -> dict[str, bytes]:
    packed = any_pb2.Any.FromString(any_bytes)
    table = route_pb2.RouteConfiguration.FromString(packed.value)
    return {vh.name: vh.SerializeToString(deterministic=True) for vh in table.virtual_hosts}


def _vhosts(before: bytes, after: bytes) -> tuple[str, ...]:
    """Which virtual hosts of a route table differ ("+name", "~name", "-name")."""
    was, now = _vhost_map(before), _vhost_map(after)
    out = [f"+{n}" for n in sorted(now) if n not in was]
    out += [f"~{n}" for n in sorted(now) if n in was and was[n] != now[n]]
    out += [f"-{n}" for n in sorted(was) if n not in now]
    return tuple(out)


def config_diff(
    before: ConfigGenerator | None,
    after: ConfigGenerator,
    proxies: Iterable[Proxy],
    errors_before: Sequence[ConfigError] = (),
    errors_after: Sequence[ConfigError] = (),
    *,
    added: Collection[str] = (),
    removed: Collection[str] = (),
) -> ConfigDiff:
    """`added`/`removed`: node ids of proxies only after / only before the change."""
    ordered = sorted(proxies, key=lambda p: p.node_id)
    return ConfigDiff(
        proxies=tuple(
            proxy_diff(
                None if p.node_id in added else before,
                None if p.node_id in removed else after,
                p,
            )
            for p in ordered
        ),
        new_errors=tuple(e for e in errors_after if e not in errors_before),
        fixed_errors=tuple(e for e in errors_before if e not in errors_after),
    )


def _proxy(kind: str, name: str, namespace: str, meta: dict[str, object]) -> Proxy:
    node = f"{kind}~127.0.0.1~{name}-0.{namespace}~{namespace}.svc.cluster.local"
    base: dict[str, object] = {
        "NAMESPACE": namespace,
        "INSTANCE_IPS": "127.0.0.1",
        "WORKLOAD_NAME": name,
        "INTERCEPTION_MODE": "NONE",
        "ADMIN_PORT": "15000",
        "PROMETHEUS_PORT": "15090",
    }
    return parse_proxy(node, {**base, **meta})


def local_proxies(resources: Iterable[Resource], *, secure: bool = False) -> list[Proxy]:
    """The proxies `shoal up` would run for these resources (one per LocalWorkload and
    LocalGateway: replicas of one workload get the same config but for their ports)."""
    out = []
    for res in resources:
        name, namespace = res.meta.name, res.meta.namespace
        flag = {"SECURE": "true"} if secure else {}
        if isinstance(res.spec, LocalWorkloadSpec):
            spec = res.spec
            meta: dict[str, object] = {
                "LABELS": dict(spec.labels),
                "SERVICE_ACCOUNT": spec.service_account or name,
                "OUTBOUND_PORT": "15001",
                "INBOUND_PORT": "15006",
                "APP_PORT": str(spec.ports[0].number),
                "SERVICE_HOST": f"{spec.service_name(name)}.{namespace}.svc.cluster.local",
                **flag,
            }
            out.append(_proxy("sidecar", name, namespace, meta))
        elif isinstance(res.spec, LocalGatewaySpec):
            gw = res.spec
            labels = dict(gw.labels)
            meta = {"LABELS": labels, "SERVICE_ACCOUNT": gw.service_account or name, **flag}
            out.append(_proxy("router", name, namespace, meta))
    return out
