"""Gateway proxies (`router~` nodes): one listener per Gateway server port, fed by the
VirtualServices bound to the Gateway.

A router gets the servers of every Gateway whose `selector` matches its labels (in any
namespace, Istio's default). Per port:

* HTTP-like and HTTPS servers: a listener whose HTTP connection manager takes route table
  ``http.PORT`` over RDS, built from the `http` routes of the VirtualServices bound to the
  Gateway (`gateways: [ns/name]`) whose hosts the server admits. HTTPS servers terminate TLS
  with the credential named by `tls.credentialName` (read from files by the sources layer,
  inline in the listener); a server whose credential does not exist yet is not served.
* TCP-like servers (and TLS terminated here): `tcp_proxy` from the first applicable `tcp`
  route (see tcp.py), weighted across destinations.

Listeners bind the node's first INSTANCE_IPS address (127.0.0.1 under `shoal up`) at the
server's port number. A port's kind is that of its first server (by gateway namespace/name);
servers of the other kind on the same port are left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from types import MappingProxyType

from envoy.config.core.v3 import address_pb2, base_pb2, config_source_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import common_pb2 as common_tls_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

from shoal.api import Resource, VirtualServiceSpec, host_matches
from shoal.api.gateway import GatewaySpec, Server, ServerTLSSettings
from shoal.api.virtualservice import HTTPMatchRequest, TCPRoute
from shoal.generate import authz, jwt, mtls, routes, tcp, telemetry
from shoal.generate.prepared import PreparedResource, prepare
from shoal.model import MeshSnapshot, Port, Proxy

_HCM = "envoy.filters.network.http_connection_manager"


@dataclass(frozen=True)
class _Bound:
    """One server of one Gateway."""

    gateway: Resource
    server: Server

    @property
    def ref(self) -> str:
        return self.gateway.namespaced_name


def gateways_for(snapshot: MeshSnapshot, proxy: Proxy) -> list[Resource]:
    """Gateways whose selector matches the router's labels."""
    out = []
    for res in snapshot.gateways:
        assert isinstance(res.spec, GatewaySpec)
        if all(proxy.labels.get(k) == v for k, v in res.spec.selector.items()):
            out.append(res)
    return out


def servers_by_port(snapshot: MeshSnapshot, proxy: Proxy) -> dict[int, list[_Bound]]:
    """Servers per port, keeping only those of the port's first server's kind."""
    ports: dict[int, list[_Bound]] = {}
    for gw in gateways_for(snapshot, proxy):
        assert isinstance(gw.spec, GatewaySpec)
        for server in gw.spec.servers:
            found = ports.setdefault(server.port.number, [])
            if not found or _kind(found[0].server) == _kind(server):
                found.append(_Bound(gw, server))
    return dict(sorted(ports.items()))


def _kind(server: Server) -> str:
    # one port serves one kind: HTTP, passed-through TLS, or other TCP
    return "passthrough" if server.passthrough else "http" if server.is_http else "tcp"


def _gateway_ref(ref: str, namespace: str) -> str:
    return ref if "/" in ref else f"{namespace}/{ref}"


def bound_services(snapshot: MeshSnapshot, bound: _Bound) -> Iterable[Resource]:
    """VirtualServices bound to the Gateway of `bound`, in namespace/name order."""
    for vs in snapshot.virtual_services:
        assert isinstance(vs.spec, VirtualServiceSpec)
        refs = {_gateway_ref(g, vs.meta.namespace) for g in vs.spec.gateways}
        if bound.ref in refs:
            yield vs


def _admits(bound: _Bound, vs_namespace: str, host: str) -> bool:
    """Whether the server's `hosts` ([namespace/]dnsName) admit `host` of a VS there."""
    for entry in bound.server.hosts:
        ns, _, dns = entry.rpartition("/")
        same = ns == "." and vs_namespace == bound.gateway.meta.namespace
        if ns not in ("", "*", vs_namespace) and not same:
            continue
        if dns == "*" or host_matches(dns, host):
            return True
    return False


def _http_routes(snapshot: MeshSnapshot, vs: Resource, bound: _Bound, port: int) -> list[rc.Route]:
    assert isinstance(vs.spec, VirtualServiceSpec)
    ns = vs.meta.namespace
    gw_port = Port(number=port, name=bound.server.port.name, protocol="HTTP")
    out = []
    for http in vs.spec.http:
        matches: list[HTTPMatchRequest | None] = [*http.match] or [None]
        for m in matches:
            if m is not None:
                if m.port is not None and m.port != port:
                    continue
                if m.gateways and bound.ref not in {_gateway_ref(g, ns) for g in m.gateways}:
                    continue
            out.append(routes.build_route(snapshot, http, ns, gw_port, m))
    return out


def route_name(port: int) -> str:
    return f"http.{port}"


def port_routes(snapshot: MeshSnapshot, port: int, servers: list[_Bound]) -> PreparedResource:
    """Route table ``http.PORT``: one virtual host per admitted VirtualService host."""
    claimed: set[str] = set()
    vhosts = []
    for bound in servers:
        for vs in bound_services(snapshot, bound):
            assert isinstance(vs.spec, VirtualServiceSpec)
            for host in vs.spec.hosts:
                if host in claimed or not _admits(bound, vs.meta.namespace, host):
                    continue
                found = _http_routes(snapshot, vs, bound, port)
                if not found:
                    continue
                claimed.add(host)
                vhost = rc.VirtualHost(name=f"{host}:{port}", domains=[host], routes=found)
                if bound.server.https_redirect:
                    vhost.require_tls = rc.VirtualHost.ALL  # 301 to https://, as Istio
                vhosts.append(vhost)
    config = route_pb2.RouteConfiguration(name=route_name(port), virtual_hosts=vhosts)
    config.validate_clusters.value = False
    return prepare(route_name(port), config, refs=routes.route_refs(config))


# Istio's TLSV1_2 -> Envoy's TLSv1_2 (TLS_AUTO is Envoy's default: 1.2 to 1.3 downstream)
_ENVOY_TLS = MappingProxyType(
    {
        "TLS_AUTO": common_tls_pb2.TlsParameters.TLS_AUTO,
        "TLSV1_0": common_tls_pb2.TlsParameters.TLSv1_0,
        "TLSV1_1": common_tls_pb2.TlsParameters.TLSv1_1,
        "TLSV1_2": common_tls_pb2.TlsParameters.TLSv1_2,
        "TLSV1_3": common_tls_pb2.TlsParameters.TLSv1_3,
    }
)


def _tls(
    snapshot: MeshSnapshot, proxy: Proxy, alpn: list[str], settings: ServerTLSSettings
) -> base_pb2.TransportSocket | None:
    """The server's TLS, or None while it cannot be served: its credential (for MUTUAL with
    `ca.crt`) does not exist yet, or, for ISTIO_MUTUAL, the proxy has no mesh certificate."""
    if settings.mode == "ISTIO_MUTUAL":
        if not proxy.secure:
            return None
        ctx = tls_pb2.DownstreamTlsContext(common_tls_context=mtls.mesh_common_context())
    else:
        credential = snapshot.credentials.get(settings.credential_name)
        if credential is None or (settings.mode == "MUTUAL" and not credential.ca_pem):
            return None
        ctx = tls_pb2.DownstreamTlsContext()
        cert = ctx.common_tls_context.tls_certificates.add()
        cert.certificate_chain.inline_string = credential.cert_pem
        cert.private_key.inline_string = credential.key_pem
        if settings.mode == "MUTUAL":
            trusted = ctx.common_tls_context.validation_context.trusted_ca
            trusted.inline_string = credential.ca_pem
    if settings.mode in ("MUTUAL", "ISTIO_MUTUAL"):
        ctx.require_client_certificate.value = True
    params = ctx.common_tls_context.tls_params
    params.tls_minimum_protocol_version = _ENVOY_TLS[settings.min_protocol_version]
    params.tls_maximum_protocol_version = _ENVOY_TLS[settings.max_protocol_version]
    ctx.common_tls_context.alpn_protocols.extend(alpn)
    socket = base_pb2.TransportSocket(name="envoy.transport_sockets.tls")
    socket.typed_config.Pack(ctx)
    return socket


def _hcm(snapshot: MeshSnapshot, proxy: Proxy, port: int) -> hcm_pb2.HttpConnectionManager:
    hcm = hcm_pb2.HttpConnectionManager(
        stat_prefix=f"gateway_http_{port}", via=f"gateway {proxy.workload_name}"
    )
    # RequestAuthentication and AuthorizationPolicy apply to gateways as to sidecars (by
    # selector or, for a Gateway API Gateway's proxies, by targetRef): JWT, then RBAC
    hcm.http_filters.extend(
        [*jwt.http_filters(snapshot, proxy), *authz.http_filters(snapshot, proxy)]
    )
    router = hcm.http_filters.add(name="envoy.filters.http.router")
    router.typed_config.Pack(router_pb2.Router())
    telemetry.instrument_outbound(hcm, snapshot, proxy)  # gateways report as `source`, as Istio's
    hcm.strip_any_host_port = True  # Host "shop.example.com:8443" matches domain shop.example.com
    hcm.normalize_path.value = True
    hcm.rds.route_config_name = route_name(port)
    hcm.rds.config_source.CopyFrom(
        config_source_pb2.ConfigSource(
            ads=config_source_pb2.AggregatedConfigSource(),
            resource_api_version=config_source_pb2.V3,
        )
    )
    return hcm


def _tcp_filter(
    snapshot: MeshSnapshot, proxy: Proxy, servers: list[_Bound], port: int
) -> tuple[listener_components_pb2.Filter, frozenset[str]] | None:
    for bound in servers:
        for vs in bound_services(snapshot, bound):
            assert isinstance(vs.spec, VirtualServiceSpec)
            chosen = tcp.select_route(vs.spec, {bound.ref, bound.gateway.meta.name}, port)
            if chosen is None:
                continue
            body = tcp.tcp_proxy(snapshot, chosen, vs.meta.namespace, f"gateway_tcp_{port}")
            telemetry.instrument_tcp(body, snapshot, proxy)
            out = listener_components_pb2.Filter(name=tcp.TCP_PROXY)
            out.typed_config.Pack(body)
            return out, tcp.refs(body)
    return None


def _passthrough_chains(
    snapshot: MeshSnapshot, proxy: Proxy, servers: list[_Bound], port: int
) -> tuple[list[listener_components_pb2.FilterChain], frozenset[str]]:
    """PASSTHROUGH servers: one chain per SNI of the bound VirtualServices' `tls` routes that
    apply here (the first route naming an SNI wins, as in Istio), each a `tcp_proxy` to the
    route's destinations; the TLS itself goes on unopened."""
    chains: list[listener_components_pb2.FilterChain] = []
    refs: set[str] = set()
    taken: set[str] = set()
    for bound in servers:
        known = {bound.ref, bound.gateway.meta.name}
        for vs in bound_services(snapshot, bound):
            assert isinstance(vs.spec, VirtualServiceSpec)
            for route in vs.spec.tls:
                names: list[str] = []
                for m in route.match:
                    if (m.port is None or m.port == port) and (
                        not m.gateways
                        or known & {_gateway_ref(g, vs.meta.namespace) for g in m.gateways}
                        or known & set(m.gateways)
                    ):
                        names += [h for h in m.sni_hosts if h not in taken and h not in names]
                if not names:
                    continue
                taken.update(names)
                body = tcp.tcp_proxy(
                    snapshot, TCPRoute(route=route.route), vs.meta.namespace, f"gateway_tls_{port}"
                )
                telemetry.instrument_tcp(body, snapshot, proxy)
                network_filter = listener_components_pb2.Filter(name=tcp.TCP_PROXY)
                network_filter.typed_config.Pack(body)
                chain = listener_components_pb2.FilterChain(filters=[network_filter])
                chain.filter_chain_match.server_names.extend(sorted(names))
                chains.append(chain)
                refs |= tcp.refs(body)
    return chains, frozenset(refs)


def _chains(
    snapshot: MeshSnapshot,
    proxy: Proxy,
    servers: list[_Bound],
    network_filter: listener_components_pb2.Filter,
) -> list[listener_components_pb2.FilterChain]:
    """A plain chain, or one TLS chain per server (matched by SNI when there are several)."""
    # (an HTTP server's tls says only httpsRedirect: it terminates nothing)
    tls_servers = [b for b in servers if b.server.tls is not None and not b.server.https_redirect]
    if not tls_servers:
        return [listener_components_pb2.FilterChain(filters=[network_filter])]
    chains = []
    alpn = ["h2", "http/1.1"] if servers[0].server.is_http else []
    claimed: set[str] = set()
    for bound in tls_servers:
        assert bound.server.tls is not None
        socket = _tls(snapshot, proxy, alpn, bound.server.tls)
        if socket is None:
            continue  # not served until its secret files (or mesh certificate) exist
        chain = listener_components_pb2.FilterChain(
            filters=[network_filter], transport_socket=socket
        )
        if len(tls_servers) > 1:
            # a name (or "any", by `*`) already claimed by an earlier server (validation keeps
            # one Gateway's apart; two Gateways on one port may still collide) stays with it:
            # Envoy refuses a listener whose chains overlap
            names = [n for n in bound.server.server_names or ("*",) if n not in claimed]
            if not names:
                continue
            claimed.update(names)
            chain.filter_chain_match.server_names.extend(n for n in names if n != "*")
        chains.append(chain)
    return chains


def router_listeners(snapshot: MeshSnapshot, proxy: Proxy) -> list[PreparedResource]:
    """One listener per Gateway server port."""
    address = proxy.instance_ips[0] if proxy.instance_ips else "0.0.0.0"
    out = []
    for port, servers in servers_by_port(snapshot, proxy).items():
        refs: frozenset[str] = frozenset()
        passthrough = servers[0].server.passthrough
        if passthrough:
            chains, refs = _passthrough_chains(snapshot, proxy, servers, port)
        elif servers[0].server.is_http:
            network_filter = listener_components_pb2.Filter(name=_HCM)
            network_filter.typed_config.Pack(_hcm(snapshot, proxy, port))
        else:
            found = _tcp_filter(snapshot, proxy, servers, port)
            if found is None:
                continue  # no tcp route for this port: nothing to forward to
            network_filter, refs = found
        if not passthrough:
            chains = _chains(snapshot, proxy, servers, network_filter)
        if not chains:
            continue
        name = f"{address}_{port}"
        listener = listener_pb2.Listener(
            name=name,
            address=address_pb2.Address(
                socket_address=address_pb2.SocketAddress(address=address, port_value=port)
            ),
            filter_chains=chains,
        )
        if len(chains) > 1 or passthrough:  # (SNI is read by the TLS inspector)
            inspector = listener.listener_filters.add(name="envoy.filters.listener.tls_inspector")
            inspector.typed_config.Pack(tls_inspector_pb2.TlsInspector())
        out.append(prepare(name, listener, refs=refs))
    return out


def router_routes(snapshot: MeshSnapshot, proxy: Proxy) -> list[PreparedResource]:
    """The ``http.PORT`` route tables of the router's HTTP ports."""
    return [
        port_routes(snapshot, port, servers)
        for port, servers in servers_by_port(snapshot, proxy).items()
        if servers[0].server.is_http
    ]
