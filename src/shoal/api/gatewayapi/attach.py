"""Which parent each Gateway API route attaches to, whether its references resolve, and the
status conditions that say so (Accepted, ResolvedRefs, with the spec's reasons).

Pure: it reads the candidate resources and the services the mesh knows (host -> ports), and
answers per route and per Gateway. api/validate.py turns every False condition into a
ConfigError naming the field (the route is then refused, keeping its last good version);
model/gatewayapi.py translates what attached; kube/status.py writes the conditions back.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from shoal.api.errors import ConfigError
from shoal.api.gatewayapi import BUILTIN_CLASSES, CONTROLLERS, GATEWAY_KIND, GROUP, ROUTE_KINDS
from shoal.api.gatewayapi.common import BackendObjectReference, ParentReference
from shoal.api.gatewayapi.gateway import GatewayClassSpec, GatewaySpec, Listener
from shoal.api.gatewayapi.grpcroute import GRPCRouteRule, GRPCRouteSpec
from shoal.api.gatewayapi.hostnames import intersect
from shoal.api.gatewayapi.httproute import HTTPRouteRule, HTTPRouteSpec
from shoal.api.gatewayapi.referencegrant import ReferenceGrantSpec
from shoal.api.resource import Path, Resource, ResourceKey

CONTROLLER = "shoal.dev/gateway-controller"
# host -> port numbers of every service the mesh knows (None: not a service)
ServicePorts = Callable[[str], Collection[int] | None]


@dataclass(frozen=True)
class Condition:
    type: str
    status: str  # "True" | "False"
    reason: str
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "True"


@dataclass(frozen=True)
class Binding:
    """One listener of a Gateway a route attached to, and the hosts it serves there."""

    gateway: ResourceKey
    listener: str
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class ParentStatus:
    ref: ParentReference
    conditions: tuple[Condition, ...]
    bindings: tuple[Binding, ...] = ()
    # GAMMA: the mesh host (and port, 0 for all) of the Service parent
    service: tuple[str, int] | None = None


@dataclass(frozen=True)
class RouteStatus:
    parents: tuple[ParentStatus, ...]
    resolved: Condition
    errors: tuple[ConfigError, ...] = ()


@dataclass(frozen=True)
class GatewayStatus:
    conditions: tuple[Condition, ...]
    # listener name -> how many routes attached to it
    attached: Mapping[str, int] = field(default_factory=dict)
    errors: tuple[ConfigError, ...] = ()


@dataclass(frozen=True)
class GatewayApiStatus:
    routes: Mapping[ResourceKey, RouteStatus]
    gateways: Mapping[ResourceKey, GatewayStatus]

    @property
    def errors(self) -> list[ConfigError]:
        found = [e for s in self.routes.values() for e in s.errors]
        return found + [e for s in self.gateways.values() for e in s.errors]


def backend_host(ref: BackendObjectReference, namespace: str) -> str:
    """The mesh host a backendRef names: a Service's cluster name, or an Istio Hostname."""
    if ref.kind == "Hostname":
        return ref.name
    return f"{ref.name}.{ref.namespace or namespace}.svc.cluster.local"


class _Grants:
    def __init__(self, resources: Iterable[Resource]) -> None:
        self._by_ns: dict[str, list[ReferenceGrantSpec]] = {}
        for r in resources:
            if isinstance(r.spec, ReferenceGrantSpec):
                self._by_ns.setdefault(r.meta.namespace, []).append(r.spec)

    def permits(self, source: Resource, group: str, kind: str, namespace: str, name: str) -> bool:
        if namespace == source.meta.namespace:
            return True
        # Gateway API's Gateway is filed as Gateway.gateway.networking.k8s.io: its kind is
        # the part before the group
        origin = (GROUP, source.kind.split(".")[0], source.meta.namespace)
        return any(g.permits(origin, (group, kind, name)) for g in self._by_ns.get(namespace, []))


def _class_ok(gw: GatewaySpec, classes: Mapping[str, GatewayClassSpec]) -> str:
    """ "" when shoal serves the Gateway's class, else why not."""
    cls = classes.get(gw.gateway_class_name)
    if cls is None:
        if gw.gateway_class_name in BUILTIN_CLASSES:
            return ""
        return (
            f"GatewayClass {gw.gateway_class_name!r} is not defined (shoal serves "
            f"{', '.join(sorted(BUILTIN_CLASSES))} and classes whose controllerName is "
            f"{CONTROLLER})"
        )
    if cls.controller_name not in CONTROLLERS:
        return (
            f"GatewayClass {gw.gateway_class_name!r} belongs to controller "
            f"{cls.controller_name!r}, not to shoal ({', '.join(sorted(CONTROLLERS))})"
        )
    return ""


def _gateway_status(
    res: Resource, spec: GatewaySpec, classes: Mapping[str, GatewayClassSpec], grants: _Grants
) -> GatewayStatus:
    why = _class_ok(spec, classes)
    if why:
        error = res.error(("spec", "gatewayClassName"), why)
        return GatewayStatus(
            (Condition("Accepted", "False", "InvalidParameters", why),), {}, (error,)
        )
    errors: list[ConfigError] = []
    for i, listener in enumerate(spec.listeners):
        refs = listener.tls.certificate_refs if listener.tls else []
        for j, ref in enumerate(refs):
            path: Path = ("spec", "listeners", i, "tls", "certificateRefs", j)
            if ref.group not in ("", "core") or ref.kind != "Secret":
                errors.append(res.error(path, f"certificateRefs name Secrets, not {ref.kind}"))
            elif not grants.permits(
                res, "", "Secret", ref.namespace or res.meta.namespace, ref.name
            ):
                errors.append(
                    res.error(
                        (*path, "namespace"),
                        f"RefNotPermitted: Secret {ref.namespace}/{ref.name} is in another "
                        "namespace and no ReferenceGrant there lets this Gateway refer to it",
                    )
                )
    resolved = (
        Condition("ResolvedRefs", "False", "RefNotPermitted", errors[0].message)
        if errors
        else Condition("ResolvedRefs", "True", "ResolvedRefs")
    )
    accepted = Condition("Accepted", "True", "Accepted")
    return GatewayStatus(
        (accepted, Condition("Programmed", "True", "Programmed"), resolved), {}, tuple(errors)
    )


def _listener_fits(route: Resource, listener: Listener, gateway: Resource) -> str:
    """ "" when `route` may attach to `listener`, else why not (NotAllowedByListeners)."""
    if route.kind not in listener.route_kinds():
        return f"listener {listener.name} ({listener.protocol}) takes no {route.kind}"
    same = listener.allowed_routes.namespaces.from_ == "Same"
    if same and route.meta.namespace != gateway.meta.namespace:
        return (
            f"listener {listener.name} allows routes from namespace "
            f"{gateway.meta.namespace} only (allowedRoutes.namespaces.from: Same)"
        )
    return ""


def _parent(
    route: Resource,
    *,
    hostnames: list[str],
    ref: ParentReference,
    gateways: Mapping[ResourceKey, Resource],
    served: Mapping[ResourceKey, GatewayStatus],
    ports: ServicePorts,
) -> tuple[ParentStatus, str]:
    """The status of one parentRef, and its failure reason's message ("" when attached)."""
    ns = ref.namespace or route.meta.namespace

    def refused(reason: str, message: str) -> tuple[ParentStatus, str]:
        return ParentStatus(ref, (Condition("Accepted", "False", reason, message),)), message

    if ref.is_service:
        host = f"{ref.name}.{ns}.svc.cluster.local"
        known = ports(host)
        if known is None:
            return refused("NoMatchingParent", f"Service {ns}/{ref.name} is not defined")
        if ref.port is not None and known and ref.port not in known:
            return refused("NoMatchingParent", f"Service {ns}/{ref.name} has no port {ref.port}")
        accepted = Condition("Accepted", "True", "Accepted")
        return ParentStatus(ref, (accepted,), service=(host, ref.port or 0)), ""
    if ref.group != GROUP or ref.kind != "Gateway":
        return refused(
            "NoMatchingParent",
            f'parentRefs name a Gateway ({GROUP}) or a Service (group ""), not '
            f"{ref.kind} of {ref.group or 'core'}",
        )
    key = (GATEWAY_KIND, ns, ref.name)
    gateway = gateways.get(key)
    if gateway is None:
        return refused("NoMatchingParent", f"Gateway {ns}/{ref.name} is not defined")
    gw_status = served.get(key)
    if gw_status is None or not gw_status.conditions[0].ok:
        return refused("NoMatchingParent", f"Gateway {ns}/{ref.name} is not served by shoal")
    assert isinstance(gateway.spec, GatewaySpec)
    candidates = [
        lst
        for lst in gateway.spec.listeners
        if (ref.section_name is None or lst.name == ref.section_name)
        and (ref.port is None or lst.port == ref.port)
    ]
    if not candidates:
        return refused(
            "NoMatchingParent",
            f"Gateway {ns}/{ref.name} has no listener "
            + (f"named {ref.section_name!r}" if ref.section_name else f"on port {ref.port}"),
        )
    bindings: list[Binding] = []
    why: list[str] = []
    host_misses = 0
    for listener in candidates:
        problem = _listener_fits(route, listener, gateway)
        if problem:
            why.append(problem)
            continue
        hosts = intersect(listener.hostname, hostnames)
        if not hosts:
            host_misses += 1
            why.append(f"listener {listener.name} serves {listener.hostname} only")
            continue
        bindings.append(Binding(key, listener.name, tuple(hosts)))
    if not bindings:
        reason = "NoMatchingListenerHostname" if host_misses else "NotAllowedByListeners"
        return refused(reason, f"Gateway {ns}/{ref.name}: " + "; ".join(why))
    accepted = Condition("Accepted", "True", "Accepted")
    return ParentStatus(ref, (accepted,), bindings=tuple(bindings)), ""


def _backends(
    spec: HTTPRouteSpec | GRPCRouteSpec,
) -> Iterable[tuple[Path, BackendObjectReference]]:
    rules: Sequence[HTTPRouteRule | GRPCRouteRule] = spec.rules
    for i, rule in enumerate(rules):
        for j, ref in enumerate(rule.backend_refs):
            yield ("rules", i, "backendRefs", j), ref
        for j, f in enumerate(rule.filters):
            if f.request_mirror is not None:
                yield (
                    ("rules", i, "filters", j, "requestMirror", "backendRef"),
                    f.request_mirror.backend_ref,
                )


def _resolve(
    route: Resource, grants: _Grants, ports: ServicePorts
) -> tuple[Condition, list[ConfigError]]:
    assert isinstance(route.spec, HTTPRouteSpec | GRPCRouteSpec)
    errors: list[ConfigError] = []
    first: Condition | None = None
    for path, ref in _backends(route.spec):
        where: Path = ("spec", *path)
        ns = ref.namespace or route.meta.namespace
        if not (ref.group in ("", "core") and ref.kind == "Service") and not (
            ref.group == "networking.istio.io" and ref.kind == "Hostname"
        ):
            reason, field_, msg = (
                "InvalidKind",
                "kind",
                (
                    f"backendRefs name a Service (or a networking.istio.io Hostname), not "
                    f"{ref.kind} of {ref.group or 'core'}"
                ),
            )
        elif ref.kind == "Service" and not grants.permits(route, "", "Service", ns, ref.name):
            reason, field_, msg = (
                "RefNotPermitted",
                "namespace",
                (
                    f"Service {ns}/{ref.name} is in another namespace and no ReferenceGrant in "
                    f"{ns} lets {route.kind}s of {route.meta.namespace} refer to it"
                ),
            )
        else:
            host = backend_host(ref, route.meta.namespace)
            known = ports(host)
            if known is None:
                reason, field_, msg = (
                    "BackendNotFound",
                    "name",
                    (
                        f"{ref.kind} {ns}/{ref.name} ({host}) is not defined by any Service, "
                        "ServiceEntry or LocalWorkload"
                    ),
                )
            elif ref.port is None and len(known) != 1:
                reason, field_, msg = (
                    "BackendNotFound",
                    "port",
                    (
                        f"{host} has ports {', '.join(map(str, sorted(known)))}; a backendRef "
                        "to a Service names its port"
                    ),
                )
            elif ref.port is not None and known and ref.port not in known:
                reason, field_, msg = (
                    "BackendNotFound",
                    "port",
                    (
                        f"port {ref.port} is not a port of {host} "
                        f"(ports: {', '.join(map(str, sorted(known)))})"
                    ),
                )
            else:
                continue
        errors.append(route.error((*where, field_), f"{reason}: {msg}"))
        first = first or Condition("ResolvedRefs", "False", reason, msg)
    return first or Condition("ResolvedRefs", "True", "ResolvedRefs"), errors


def gateway_api_status(resources: Iterable[Resource], ports: ServicePorts) -> GatewayApiStatus:
    """The status of every Gateway and route among `resources` (see the module docstring)."""
    resources = list(resources)
    grants = _Grants(resources)
    classes = {r.meta.name: r.spec for r in resources if isinstance(r.spec, GatewayClassSpec)}
    gateways = {r.key: r for r in resources if r.kind == GATEWAY_KIND}
    served: dict[ResourceKey, GatewayStatus] = {}
    for key, gw in gateways.items():
        assert isinstance(gw.spec, GatewaySpec)
        served[key] = _gateway_status(gw, gw.spec, classes, grants)
    attached: dict[tuple[ResourceKey, str], int] = {}
    routes: dict[ResourceKey, RouteStatus] = {}
    for route in resources:
        if route.kind not in ROUTE_KINDS:
            continue
        assert isinstance(route.spec, HTTPRouteSpec | GRPCRouteSpec)
        parents: list[ParentStatus] = []
        errors: list[ConfigError] = []
        if not route.spec.parent_refs:
            errors.append(
                route.error(
                    ("spec", "parentRefs"), "a route needs parentRefs (a Gateway or a Service)"
                )
            )
        for i, ref in enumerate(route.spec.parent_refs):
            status, why = _parent(
                route,
                hostnames=list(route.spec.hostnames),
                ref=ref,
                gateways=gateways,
                served=served,
                ports=ports,
            )
            if why:
                errors.append(
                    route.error(("spec", "parentRefs", i), f"{status.conditions[0].reason}: {why}")
                )
            parents.append(status)
        resolved, ref_errors = _resolve(route, grants, ports)
        errors += ref_errors
        parents = [
            ParentStatus(p.ref, (*p.conditions, resolved), p.bindings, p.service) for p in parents
        ]
        if not errors:
            for p in parents:
                for b in p.bindings:
                    attached[(b.gateway, b.listener)] = attached.get((b.gateway, b.listener), 0) + 1
        routes[route.key] = RouteStatus(tuple(parents), resolved, tuple(errors))
    for key, gw_status in served.items():
        gw = gateways[key]
        assert isinstance(gw.spec, GatewaySpec)
        counts = {lst.name: attached.get((key, lst.name), 0) for lst in gw.spec.listeners}
        served[key] = GatewayStatus(gw_status.conditions, counts, gw_status.errors)
    return GatewayApiStatus(routes, served)
