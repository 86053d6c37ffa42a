"""LDS and CDS for sidecars whose traffic iptables captures (INTERCEPTION_MODE REDIRECT).

Istio's shape (agent/capture.py sends the pod's traffic here):

* `virtualOutbound` on 0.0.0.0:15001 with `use_original_dst`: Envoy hands each captured
  connection to the listener of its original destination -- `0.0.0.0_PORT` for an HTTP port
  (routed by Host through the same `outbound_http` route table loopback sidecars use, whose
  catch-all is the PassthroughCluster here), `VIP_PORT` for a TCP port of a service with an
  address (its VirtualService `tcp` routes, else the port's cluster). What matches no
  listener stays on 15001: its last chain sends it to `PassthroughCluster` (ORIGINAL_DST,
  where the app was going) under ALLOW_ANY, to `BlackHoleCluster` under REGISTRY_ONLY. A
  chain for destination port 15001 itself is a blackhole (a connection to the capture port
  would loop).
* `virtualInbound` on 0.0.0.0:15006 with the `original_dst` listener filter: a filter chain
  per port of the service the workload serves (matched on `destination_port`; HTTP ports get
  the loopback sidecar's inbound HCM with its mTLS chains per PeerAuthentication mode, TCP
  ports a `tcp_proxy`), a passthrough chain for any other port and a blackhole for 15006.
  Inbound clusters are ORIGINAL_DST bound to 127.0.0.6 (the capture rules let that source
  through on loopback), so they reach the app at podIP:PORT and are the same for every pod.

Listeners are named as Istio names them (`virtualOutbound`, `0.0.0.0_9080`,
`10.96.0.3_3306`, `virtualInbound`), bind only 15001 and 15006 (the others
`bind_to_port: false`), and do not depend on the proxy's IP: every pod of a workload shares
them. A TCP port of a service without an address gets `0.0.0.0_PORT` unless an HTTP port or
another service holds that port (then only its own VIP, or passthrough, reaches it).
"""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.listener.original_dst.v3 import original_dst_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from shoal.api.virtualservice import VirtualServiceSpec
from shoal.generate import mtls, outbound_policy, peerauth, tcp, telemetry
from shoal.generate.httpfilters import ROUTE_FILTERS, packed
from shoal.generate.listeners import inbound_listener, outbound_listener
from shoal.generate.names import inbound_cluster, outbound_cluster
from shoal.generate.prepared import PreparedResource, prepare, unpack
from shoal.model import MeshSnapshot, Port, Proxy, Service

OUTBOUND_CAPTURE_PORT = 15001
INBOUND_CAPTURE_PORT = 15006
VIRTUAL_OUTBOUND = "virtualOutbound"
VIRTUAL_INBOUND = "virtualInbound"
PASSTHROUGH = "PassthroughCluster"
BLACKHOLE = "BlackHoleCluster"
INBOUND_PASSTHROUGH = "InboundPassthroughClusterIpv4"
INBOUND_SOURCE = "127.0.0.6"
CONNECT_TIMEOUT_S = 10

_TCP_PROXY = tcp.TCP_PROXY
_ORIGINAL_DST = "envoy.filters.listener.original_dst"
_TLS_INSPECTOR = "envoy.filters.listener.tls_inspector"


def _address(host: str, port: int) -> address_pb2.Address:
    return address_pb2.Address(
        socket_address=address_pb2.SocketAddress(address=host, port_value=port)
    )


def _tcp_chain(name: str, cluster: str, stat_prefix: str) -> lc.FilterChain:
    proxy = tcp_proxy_pb2.TcpProxy(stat_prefix=stat_prefix, cluster=cluster)
    return lc.FilterChain(
        name=name, filters=[lc.Filter(name=_TCP_PROXY, typed_config=packed(proxy))]
    )


# ------------------------------------------------------------------ clusters
def _original_dst(name: str, *, bind: str | None = None) -> PreparedResource:
    cluster = cluster_pb2.Cluster(
        name=name,
        type=cluster_pb2.Cluster.ORIGINAL_DST,
        lb_policy=cluster_pb2.Cluster.CLUSTER_PROVIDED,
    )
    cluster.connect_timeout.FromSeconds(CONNECT_TIMEOUT_S)
    if bind is not None:
        cluster.upstream_bind_config.source_address.address = bind
        cluster.upstream_bind_config.source_address.port_value = 0
    return prepare(name, cluster)


def _blackhole() -> PreparedResource:
    cluster = cluster_pb2.Cluster(name=BLACKHOLE, type=cluster_pb2.Cluster.STATIC)
    cluster.connect_timeout.FromSeconds(CONNECT_TIMEOUT_S)
    return prepare(BLACKHOLE, cluster)


_SHARED_CLUSTERS = (
    _original_dst(PASSTHROUGH),
    _blackhole(),
    _original_dst(INBOUND_PASSTHROUGH, bind=INBOUND_SOURCE),
)


def inbound_ports(snapshot: MeshSnapshot, proxy: Proxy) -> list[Port]:
    """The ports the workload serves: its service's (node metadata SERVICE_HOST), by the
    port the app listens on (targetPort, else the port)."""
    service = snapshot.services.get(proxy.service_host)
    out: dict[int, Port] = {}
    for port in service.ports if service is not None else ():
        out.setdefault(port.target_port or port.number, port)
    return [out[n] for n in sorted(out)]


def clusters(snapshot: MeshSnapshot, proxy: Proxy) -> list[PreparedResource]:
    """Passthrough, blackhole and one inbound cluster per served port (the app at
    podIP:PORT from 127.0.0.6: ORIGINAL_DST, so equal for every pod)."""
    inbound = [
        _original_dst(inbound_cluster(p.target_port or p.number), bind=INBOUND_SOURCE)
        for p in inbound_ports(snapshot, proxy)
    ]
    return [*_SHARED_CLUSTERS, *inbound]


# ------------------------------------------------------------------ outbound
def _http_port_listener(
    snapshot: MeshSnapshot, proxy: Proxy, port: int, route_filters: frozenset[str]
) -> PreparedResource:
    """`0.0.0.0_PORT`: the loopback sidecar's Host-routed HCM, reached from 15001 only."""
    made = outbound_listener(snapshot, proxy, port, route_filters)
    listener = listener_pb2.Listener()
    unpack(made, listener)
    name = f"0.0.0.0_{port}"
    listener.name = name
    listener.address.CopyFrom(_address("0.0.0.0", port))
    listener.bind_to_port.value = False
    return prepare(name, listener, refs=made.refs)


def _tcp_target(snapshot: MeshSnapshot, service: Service, port: Port) -> tcp_proxy_pb2.TcpProxy:
    stat_prefix = outbound_cluster(port.number, "", service.hostname)
    for vs_res in snapshot.vs_by_host.get(service.hostname, ()):
        if not isinstance(vs_res.spec, VirtualServiceSpec):
            continue
        route = tcp.select_route(vs_res.spec, {"mesh"}, port.number)
        if route is not None:
            return tcp.tcp_proxy(snapshot, route, vs_res.meta.namespace, stat_prefix)
    return tcp_proxy_pb2.TcpProxy(stat_prefix=stat_prefix, cluster=stat_prefix)


def _tcp_listener(
    snapshot: MeshSnapshot, proxy: Proxy, service: Service, port: Port, host: str
) -> PreparedResource:
    target = _tcp_target(snapshot, service, port)
    telemetry.instrument_tcp(target, snapshot, proxy)
    name = f"{host}_{port.number}"
    listener = listener_pb2.Listener(
        name=name,
        address=_address(host, port.number),
        filter_chains=[
            lc.FilterChain(filters=[lc.Filter(name=_TCP_PROXY, typed_config=packed(target))])
        ],
    )
    listener.bind_to_port.value = False
    return prepare(name, listener, refs=tcp.refs(target))


def _outbound_port_listeners(
    snapshot: MeshSnapshot, proxy: Proxy, route_filters: frozenset[str]
) -> list[PreparedResource]:
    http_ports = sorted(
        {p.number for s in snapshot.services.values() for p in s.ports if p.is_http}
    )
    out = [_http_port_listener(snapshot, proxy, n, route_filters) for n in http_ports]
    taken = set(http_ports)
    wildcard: dict[int, list[tuple[Service, Port]]] = {}
    for service in snapshot.services.values():
        for port in service.ports:
            if port.is_http:
                continue
            addresses = [a for a in service.addresses if "/" not in a and ":" not in a]
            for address in addresses:
                out.append(_tcp_listener(snapshot, proxy, service, port, address))
            if not addresses:
                wildcard.setdefault(port.number, []).append((service, port))
    for number, holders in sorted(wildcard.items()):
        if number not in taken and len(holders) == 1:
            out.append(_tcp_listener(snapshot, proxy, *holders[0], "0.0.0.0"))
    return out


def virtual_outbound(snapshot: MeshSnapshot, proxy: Proxy) -> PreparedResource:
    blocked = outbound_policy.outbound_mode(snapshot, proxy) == outbound_policy.REGISTRY_ONLY
    loop = _tcp_chain(f"{VIRTUAL_OUTBOUND}-blackhole", BLACKHOLE, BLACKHOLE)
    loop.filter_chain_match.destination_port.value = OUTBOUND_CAPTURE_PORT
    rest = _tcp_chain(
        f"{VIRTUAL_OUTBOUND}-catchall-tcp",
        BLACKHOLE if blocked else PASSTHROUGH,
        BLACKHOLE if blocked else PASSTHROUGH,
    )
    listener = listener_pb2.Listener(
        name=VIRTUAL_OUTBOUND,
        address=_address("0.0.0.0", OUTBOUND_CAPTURE_PORT),
        filter_chains=[loop, rest],
    )
    listener.use_original_dst.value = True
    return prepare(VIRTUAL_OUTBOUND, listener, refs=frozenset({BLACKHOLE, PASSTHROUGH}))


# ------------------------------------------------------------------ inbound
def _inbound_chains(snapshot: MeshSnapshot, proxy: Proxy, port: Port) -> list[lc.FilterChain]:
    """The chains for one served port, matched on its destination port."""
    number = port.target_port or port.number
    cluster = inbound_cluster(number)
    if port.is_http:
        made = inbound_listener(snapshot, proxy, "0.0.0.0", INBOUND_CAPTURE_PORT, number)
        listener = listener_pb2.Listener()
        unpack(made, listener)
        chains = list(listener.filter_chains)
    else:
        chains = [_tcp_chain("inbound_tcp", cluster, cluster)]
        mode = peerauth.mtls_mode(snapshot, proxy, number) if proxy.secure else "DISABLE"
        if mode != "DISABLE":
            tls = lc.FilterChain()
            tls.CopyFrom(chains[0])
            tls.name = "inbound_tcp_mtls"
            tls.filter_chain_match.transport_protocol = "tls"
            tls.transport_socket.CopyFrom(mtls.downstream_mtls())
            chains[0].filter_chain_match.transport_protocol = "raw_buffer"
            chains = [tls] if mode == "STRICT" else [tls, chains[0]]
    for chain in chains:
        chain.name = f"{chain.name or 'inbound'}|{number}"
        chain.filter_chain_match.destination_port.value = number
    return chains


def virtual_inbound(snapshot: MeshSnapshot, proxy: Proxy) -> PreparedResource:
    ports = inbound_ports(snapshot, proxy)
    chains: list[lc.FilterChain] = []
    refs = {INBOUND_PASSTHROUGH, BLACKHOLE}
    for port in ports:
        chains.extend(_inbound_chains(snapshot, proxy, port))
        refs.add(inbound_cluster(port.target_port or port.number))
    loop = _tcp_chain(f"{VIRTUAL_INBOUND}-blackhole", BLACKHOLE, BLACKHOLE)
    loop.filter_chain_match.destination_port.value = INBOUND_CAPTURE_PORT
    # any other port: to the app as it was addressed (Istio's inbound passthrough)
    rest = _tcp_chain(f"{VIRTUAL_INBOUND}-passthrough", INBOUND_PASSTHROUGH, INBOUND_PASSTHROUGH)
    listener = listener_pb2.Listener(
        name=VIRTUAL_INBOUND,
        address=_address("0.0.0.0", INBOUND_CAPTURE_PORT),
        filter_chains=[*chains, loop, rest],
    )
    listener.listener_filters.add(
        name=_ORIGINAL_DST, typed_config=packed(original_dst_pb2.OriginalDst())
    )
    if any(c.filter_chain_match.transport_protocol for c in chains):
        listener.listener_filters.add(
            name=_TLS_INSPECTOR, typed_config=packed(tls_inspector_pb2.TlsInspector())
        )
    return prepare(VIRTUAL_INBOUND, listener, refs=frozenset(refs))


def capture_listeners(
    snapshot: MeshSnapshot, proxy: Proxy, route_filters: frozenset[str] = ROUTE_FILTERS
) -> list[PreparedResource]:
    """Every listener of a REDIRECT sidecar (see the module docstring). `route_filters`: the
    HTTP filters its route table turns on (httpfilters.py), held by its HTTP listeners."""
    return [
        virtual_outbound(snapshot, proxy),
        virtual_inbound(snapshot, proxy),
        *_outbound_port_listeners(snapshot, proxy, route_filters),
    ]
