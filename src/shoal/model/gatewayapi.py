"""Gateway API onto the Istio model: Gateways and routes become the Istio Gateways and
VirtualServices the rest of shoal already serves (as Istio itself translates them).

- A Gateway API Gateway becomes one Istio Gateway per HTTP/HTTPS listener, selecting the
  proxies labelled `gateway.networking.k8s.io/gateway-name: NAME` (Istio's deployment label),
  in the Gateway's namespace; HTTPS listeners terminate TLS with their first certificateRef
  as `credentialName`. TLS and TCP listeners take TLSRoutes/TCPRoutes, not served yet, so
  they open no port.
- The HTTPRoutes and GRPCRoutes attached to one listener become one VirtualService per
  host, their rules in the spec's precedence order (model/gatewayapi_rules.py); routes
  without hostnames also serve every named host of the listener, as the spec merges them.
- GAMMA: routes whose parentRef is a Service become one mesh VirtualService for its host.

Only routes that validation accepted arrive here (api/gatewayapi/attach.py refused the
rest with an error), so the attachment is computed again just for its bindings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import ValidationError

from shoal.api import Resource
from shoal.api.gateway import GatewaySpec as IstioGatewaySpec
from shoal.api.gatewayapi import GATEWAY_KIND, GATEWAY_NAME_LABEL, ROUTE_KINDS
from shoal.api.gatewayapi.attach import gateway_api_status
from shoal.api.gatewayapi.gateway import GatewaySpec, Listener
from shoal.api.gatewayapi.grpcroute import GRPCRouteRule, GRPCRouteSpec
from shoal.api.gatewayapi.httproute import HTTPRouteRule, HTTPRouteSpec
from shoal.api.meta import ObjectMeta
from shoal.api.virtualservice import VirtualServiceSpec
from shoal.model.gatewayapi_rules import Entry, rule_entries

_SUFFIX = "gateway-api"
_ISTIO_NET = "networking.istio.io/v1"


def istio_gateway_name(gateway: str, listener: str) -> str:
    """The Istio Gateway serving one listener (a name no hand-written Gateway has)."""
    return f"{gateway}.{listener}.{_SUFFIX}"


def _server(listener: Listener) -> dict[str, Any] | None:
    if listener.protocol not in ("HTTP", "HTTPS"):
        return None
    server: dict[str, Any] = {
        "port": {"number": listener.port, "name": listener.name, "protocol": listener.protocol},
        # which namespaces' routes attach is decided by attach.py, so the server admits all
        "hosts": [f"*/{listener.hostname or '*'}"],
        "name": listener.name,
    }
    if listener.protocol == "HTTPS" and listener.tls is not None:
        server["tls"] = {"mode": "SIMPLE", "credentialName": listener.tls.certificate_refs[0].name}
    return server


def _gateways(gateway: Resource) -> list[Resource]:
    assert isinstance(gateway.spec, GatewaySpec)
    out = []
    for listener in gateway.spec.listeners:
        server = _server(listener)
        if server is None:
            continue
        spec = IstioGatewaySpec.model_validate(
            {"selector": {GATEWAY_NAME_LABEL: gateway.meta.name}, "servers": [server]}
        )
        meta = ObjectMeta(
            name=istio_gateway_name(gateway.meta.name, listener.name),
            namespace=gateway.meta.namespace,
        )
        out.append(Resource(_ISTIO_NET, "Gateway", meta, spec, gateway.origin))
    return out


def _entries(route: Resource) -> list[Entry]:
    assert isinstance(route.spec, HTTPRouteSpec | GRPCRouteSpec)
    order = (route.meta.creation_timestamp or "", route.meta.namespace, route.meta.name)
    name = f"{route.meta.namespace}.{route.meta.name}"
    rules: Sequence[HTTPRouteRule | GRPCRouteRule] = route.spec.rules
    return [
        e
        for i, rule in enumerate(rules)
        for e in rule_entries(rule, route.meta.namespace, order, i, name)
    ]


def _virtual_service(
    name: str,
    *,
    namespace: str,
    hosts: Sequence[str],
    gateways: Sequence[str],
    entries: Iterable[Entry],
    origin: Resource,
    port: int = 0,
) -> Resource | None:
    http = [e.route for e in sorted(entries, key=lambda e: e.order)]
    if port:  # a GAMMA parentRef with a port: its routes are for that port only
        http = [{**h, "match": [{**m, "port": port} for m in h.get("match", [{}])]} for h in http]
    try:
        spec = VirtualServiceSpec.model_validate(
            {"hosts": list(hosts), "gateways": list(gateways), "http": http}
        )
    except ValidationError:
        # validation checked every field this is made of; a route that still does not fit
        # is left out rather than breaking the snapshot
        return None
    meta = ObjectMeta(name=name, namespace=namespace)
    return Resource(_ISTIO_NET, "VirtualService", meta, spec, origin.origin)


def translate(resources: Sequence[Resource]) -> list[Resource]:
    """The Istio Gateways and VirtualServices the Gateway API resources among `resources`
    stand for (none when there are none)."""
    if not any(r.kind == GATEWAY_KIND or r.kind in ROUTE_KINDS for r in resources):
        return []
    status = gateway_api_status(resources, lambda host: ())
    gateways = {r.key: r for r in resources if r.kind == GATEWAY_KIND}
    out: list[Resource] = []
    for key, gw_status in sorted(status.gateways.items()):
        if gw_status.conditions[0].ok:
            out += _gateways(gateways[key])
    # (gateway key, listener) -> host -> entries; service host -> (port, entries)
    at_listener: dict[tuple[tuple[str, str, str], str], dict[str, list[Entry]]] = {}
    at_service: dict[tuple[str, int], list[Entry]] = {}
    first: dict[object, Resource] = {}
    by_key = {r.key: r for r in resources}
    for key, route_status in sorted(status.routes.items()):
        route = by_key[key]
        entries = _entries(route)
        for parent in route_status.parents:
            for b in parent.bindings:
                hosts = at_listener.setdefault((b.gateway, b.listener), {})
                for host in b.hosts:
                    hosts.setdefault(host, []).extend(entries)
                first.setdefault((b.gateway, b.listener), route)
            if parent.service is not None:
                at_service.setdefault(parent.service, []).extend(entries)
                first.setdefault(parent.service, route)
    for (gw_key, listener), hosts in sorted(at_listener.items()):
        _, namespace, gw_name = gw_key
        ref = f"{namespace}/{istio_gateway_name(gw_name, listener)}"
        anywhere = hosts.get("*", [])
        for i, (host, entries) in enumerate(sorted(hosts.items())):
            merged = entries if host == "*" else [*entries, *anywhere]
            vs = _virtual_service(
                f"{gw_name}.{listener}.{i}.{_SUFFIX}",
                namespace=namespace,
                hosts=[host],
                gateways=[ref],
                entries=merged,
                origin=first[(gw_key, listener)],
            )
            if vs is not None:
                out.append(vs)
    for (host, port), entries in sorted(at_service.items()):
        service, namespace = host.split(".")[:2]
        vs = _virtual_service(
            f"{service}.{port or 'all'}.mesh.{_SUFFIX}",
            namespace=namespace,
            hosts=[host],
            gateways=[],
            entries=entries,
            origin=first[(host, port)],
            port=port,
        )
        if vs is not None:
            out.append(vs)
    return out
