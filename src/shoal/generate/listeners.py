"""LDS: a sidecar's listeners.

In INTERCEPTION_MODE NONE (no iptables) the sidecar has an outbound HTTP listener on
127.0.0.1:OUTBOUND_PORT that routes by Host header through RDS, and, when the node says where
its app listens (APP_PORT), an inbound listener on INBOUND_PORT that forwards to the app.
Listener bodies change only when ports change, so routing changes never drain connections.

A secure sidecar's inbound listener (node metadata SECURE, see mtls.py) speaks mTLS: a
`tls_inspector` tells TLS from plaintext connections and picks a filter chain, the TLS one
requiring a client certificate from the mesh CA. Which chains exist is PeerAuthentication's
mode for the workload port (peerauth.py): STRICT only TLS (a plaintext client finds no
chain and is disconnected), PERMISSIVE both, DISABLE only plaintext. The app learns the
caller's SPIFFE id from `x-forwarded-client-cert` (`URI=spiffe://...`), which the sidecar
sets from the peer certificate and strips from anything a caller sent.
"""

from __future__ import annotations

from envoy.config.core.v3 import address_pb2, base_pb2, config_source_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from shoal.generate import mtls, peerauth, telemetry
from shoal.generate.httpfilters import (
    ROUTE_FILTERS,
    inbound_http_filters,
    outbound_http_filters,
    packed,
)
from shoal.generate.names import (
    INBOUND_LISTENER,
    OUTBOUND_LISTENER,
    OUTBOUND_ROUTE,
    inbound_cluster,
)
from shoal.generate.prepared import PreparedResource, prepare
from shoal.model import MeshSnapshot, Proxy

_HCM = "envoy.filters.network.http_connection_manager"
_TLS_INSPECTOR = "envoy.filters.listener.tls_inspector"


def _listener(
    name: str, host: str, port: int, hcm: hcm_pb2.HttpConnectionManager
) -> listener_pb2.Listener:
    listener = listener_pb2.Listener(
        name=name,
        address=address_pb2.Address(
            socket_address=address_pb2.SocketAddress(address=host, port_value=port)
        ),
        filter_chains=[
            listener_components_pb2.FilterChain(
                filters=[listener_components_pb2.Filter(name=_HCM, typed_config=packed(hcm))]
            )
        ],
    )
    return listener


def _hcm(
    stat_prefix: str, via: str, filters: list[hcm_pb2.HttpFilter]
) -> hcm_pb2.HttpConnectionManager:
    # `via` makes the path through the mesh visible to apps and in responses
    hcm = hcm_pb2.HttpConnectionManager(stat_prefix=stat_prefix, http_filters=filters, via=via)
    hcm.normalize_path.value = True
    hcm.merge_slashes = True
    hcm.path_with_escaped_slashes_action = hcm_pb2.HttpConnectionManager.KEEP_UNCHANGED
    # Mesh peers are internal: Envoy then trusts their x-envoy-* headers, among them the
    # caller's remaining time (x-envoy-expected-rq-timeout-ms, deadline propagation). Envoy
    # treats no address as internal unless told; Istio lists the private ranges the same way.
    for prefix, length in _INTERNAL_RANGES:
        hcm.internal_address_config.cidr_ranges.add(address_prefix=prefix).prefix_len.value = length
    return hcm


_INTERNAL_RANGES = (
    ("10.0.0.0", 8),
    ("172.16.0.0", 12),
    ("192.168.0.0", 16),
    ("127.0.0.1", 32),
    ("fd00::", 8),
    ("::1", 128),
)


def outbound_listener(
    snapshot: MeshSnapshot,
    proxy: Proxy,
    port: int,
    route_filters: frozenset[str] = ROUTE_FILTERS,
) -> PreparedResource:
    """Plain HTTP on loopback; the Host header picks the service (RDS ``outbound_http``).
    `route_filters`: the HTTP filters routes of that table turn on (httpfilters.py)."""
    hcm = _hcm(
        "outbound_http",
        f"outbound {proxy.workload_name}",
        outbound_http_filters(snapshot, proxy, route_filters),
    )
    telemetry.instrument_outbound(hcm, snapshot, proxy)
    hcm.rds.route_config_name = OUTBOUND_ROUTE
    hcm.rds.config_source.CopyFrom(
        config_source_pb2.ConfigSource(
            ads=config_source_pb2.AggregatedConfigSource(),
            resource_api_version=config_source_pb2.V3,
        )
    )
    listener = _listener(OUTBOUND_LISTENER, "127.0.0.1", port, hcm)
    # Envoy's tracers make CLIENT spans on an OUTBOUND listener (SERVER ones otherwise, which
    # is right for inbound): Zipkin showed a caller sidecar's span as SERVER without it
    listener.traffic_direction = base_pb2.OUTBOUND
    return prepare(OUTBOUND_LISTENER, listener)


def inbound_listener(
    snapshot: MeshSnapshot, proxy: Proxy, host: str, port: int, app_port: int
) -> PreparedResource:
    """Traffic for this workload: everything to the local app."""
    hcm = _hcm(
        "inbound_http",
        f"inbound {proxy.workload_name}",
        inbound_http_filters(snapshot, proxy),
    )
    # The peer's address decides whether the caller is internal (a mesh peer whose x-envoy-*
    # headers, e.g. its remaining time, are trusted) or external (those headers are stripped).
    hcm.use_remote_address.value = True
    telemetry.instrument_inbound(hcm, snapshot, proxy, mtls=False)
    cluster = inbound_cluster(app_port)
    route = rc.Route(match=rc.RouteMatch(prefix="/"))
    route.route.cluster = cluster
    route.route.timeout.FromSeconds(0)
    hcm.route_config.CopyFrom(
        route_pb2.RouteConfiguration(
            name="inbound",
            virtual_hosts=[rc.VirtualHost(name="inbound", domains=["*"], routes=[route])],
        )
    )
    listener = _listener(INBOUND_LISTENER, host, port, hcm)
    if proxy.secure:
        _secure_inbound(listener, peerauth.mtls_mode(snapshot, proxy, app_port), snapshot, proxy)
    return prepare(INBOUND_LISTENER, listener, refs=frozenset({cluster}))


def _secure_inbound(
    listener: listener_pb2.Listener, mode: str, snapshot: MeshSnapshot, proxy: Proxy
) -> None:
    """Turn the plaintext chain of `listener` into the chains `mode` allows (see above)."""
    plain = listener.filter_chains[0]
    hcm = hcm_pb2.HttpConnectionManager()
    plain.filters[0].typed_config.Unpack(hcm)
    # The caller's identity reaches the app; a caller cannot forge it (SANITIZE_SET).
    hcm.forward_client_cert_details = hcm_pb2.HttpConnectionManager.SANITIZE_SET
    hcm.set_current_client_cert_details.uri = True
    plain.filters[0].typed_config.CopyFrom(packed(hcm))
    if mode == "DISABLE":
        return
    # the mTLS chain's telemetry trusts what the caller's certificate proves (telemetry_peer)
    telemetry.instrument_inbound(hcm, snapshot, proxy, mtls=True)
    tls_filter = listener_components_pb2.Filter(name=_HCM, typed_config=packed(hcm))
    tls_chain = listener_components_pb2.FilterChain(
        name="inbound_mtls",
        filter_chain_match=listener_components_pb2.FilterChainMatch(transport_protocol="tls"),
        filters=[tls_filter],
        transport_socket=mtls.downstream_mtls(mtls.ALPN_DOWNSTREAM),
    )
    plain.name = "inbound_plaintext"
    plain.filter_chain_match.transport_protocol = "raw_buffer"
    chains = [tls_chain] if mode == "STRICT" else [tls_chain, plain]
    del listener.filter_chains[:]
    listener.filter_chains.extend(chains)
    listener.listener_filters.add(
        name=_TLS_INSPECTOR, typed_config=packed(tls_inspector_pb2.TlsInspector())
    )


def sidecar_listeners(
    snapshot: MeshSnapshot, proxy: Proxy, route_filters: frozenset[str] = ROUTE_FILTERS
) -> list[PreparedResource]:
    """`route_filters`: the HTTP filters the proxy's outbound route table turns on (its
    `PreparedResource.route_filters`; by default all a route may use)."""
    out = []
    if proxy.outbound_port is not None:
        out.append(outbound_listener(snapshot, proxy, proxy.outbound_port, route_filters))
    elif proxy.interception_mode == "REDIRECT":
        # Without capture rules in place yet, REDIRECT sidecars get the Host-routed listener on
        # Istio's outbound capture port; original-destination routing arrives with capture.
        out.append(outbound_listener(snapshot, proxy, 15001, route_filters))
    if proxy.inbound_port is not None and proxy.app_port is not None:
        host = proxy.instance_ips[0] if proxy.instance_ips else proxy.ip
        out.append(inbound_listener(snapshot, proxy, host, proxy.inbound_port, proxy.app_port))
    return out
