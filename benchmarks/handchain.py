"""A hand-written 2-hop mTLS Envoy chain: the data-plane floor shoal's secure sidecars are held to.

What someone writing Envoy config by hand for "client -> sidecar -> sidecar -> app, mTLS in
between" would write, as static bootstraps (no xDS): a client Envoy whose listener routes
every request to one cluster speaking HTTP/2 over mTLS (a client certificate, the mesh CA,
the server's SPIFFE id checked), and a server Envoy whose listener requires a client
certificate from the same CA and forwards to the app over HTTP/1.1. One worker each
(``--concurrency 1``, as ``shoal agent`` starts Envoy), the same backend as the shoal path.
Certificates come from shoal's own CA code (EC P-256, SPIFFE URI SANs), like the mesh's.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.envoy import EnvoyProcess
from harness.ports import free_port
from shoal.ca import certs

_T = "type.googleapis.com/"
CLIENT_ID = "spiffe://cluster.local/ns/default/sa/hand-client"
SERVER_ID = "spiffe://cluster.local/ns/default/sa/hand-server"


@dataclass(frozen=True)
class Pki:
    ca: Path
    client_cert: Path
    client_key: Path
    server_cert: Path
    server_key: Path


def make_pki(folder: Path) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    root_key = certs.new_key()
    root = certs.make_root(root_key)
    paths: dict[str, Path] = {"ca": folder / "ca.pem"}
    paths["ca"].write_bytes(certs.cert_pem(root))
    for who, uri in (("client", CLIENT_ID), ("server", SERVER_ID)):
        key = certs.new_key()
        leaf = certs.leaf(
            key.public_key(),
            uri=uri,
            issuer=root,
            issuer_key=root_key,
            lifetime=dt.timedelta(hours=2),
        )
        paths[f"{who}_cert"] = folder / f"{who}.pem"
        paths[f"{who}_key"] = folder / f"{who}-key.pem"
        paths[f"{who}_cert"].write_bytes(certs.cert_pem(leaf))
        paths[f"{who}_key"].write_bytes(certs.key_pem(key))
    return Pki(**paths)


def _tls_context(cert: Path, key: Path, ca: Path, peer: str | None) -> dict[str, Any]:
    validation: dict[str, Any] = {"trusted_ca": {"filename": str(ca)}}
    if peer is not None:
        validation["match_typed_subject_alt_names"] = [
            {"san_type": "URI", "matcher": {"exact": peer}}
        ]
    return {
        "tls_certificates": [
            {"certificate_chain": {"filename": str(cert)}, "private_key": {"filename": str(key)}}
        ],
        "validation_context": validation,
    }


# Pieces of shoal's sidecar config that the hand-written chain can add one by one
# (overhead_bench.py --attribute), to find what each costs per request.
FEATURES = {
    "tap": "an idle tap filter (admin config) first in both HCMs (telemetry_tap.py)",
    "disabled": "disabled CORS and fault filters in the client HCM (httpfilters.py)",
    "retry": "Istio's default retry policy on the client's route (retries.py)",
    "via": "a `via` header set by both HCMs (listeners.py)",
    "paths": "normalize_path and merge_slashes in both HCMs (listeners.py)",
    "internal": "internal_address_config in both HCMs, use_remote_address on the server's",
    "xfcc": "XFCC SANITIZE_SET with the URI on the server (listeners.py)",
    "inspector": "a tls_inspector and a transport_protocol match on the server's listener",
    "cluster": "LEAST_REQUEST and Istio's circuit breakers (track_remaining) on the client's",
}

_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
_PREVIOUS_HOSTS = "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
_INTERNAL = (("10.0.0.0", 8), ("172.16.0.0", 12), ("192.168.0.0", 16), ("127.0.0.1", 32))


def _typed(name: str, type_name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "typed_config": {"@type": _T + type_name, **fields}}


def _filters(client: bool, stat_prefix: str, features: frozenset[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if "tap" in features:
        out.append(
            _typed(
                "envoy.filters.http.tap",
                "envoy.extensions.filters.http.tap.v3.Tap",
                common_config={"admin_config": {"config_id": stat_prefix}},
                record_headers_received_time=True,
                record_downstream_connection=True,
            )
        )
    if "disabled" in features and client:
        for name, type_name in (
            ("envoy.filters.http.cors", "envoy.extensions.filters.http.cors.v3.Cors"),
            ("envoy.filters.http.fault", "envoy.extensions.filters.http.fault.v3.HTTPFault"),
        ):
            out.append({**_typed(name, type_name), "disabled": True})
    router = "envoy.extensions.filters.http.router.v3.Router"
    out.append(_typed("envoy.filters.http.router", router))
    return out


def _hcm(stat_prefix: str, cluster: str, features: frozenset[str] = frozenset()) -> dict[str, Any]:
    client = stat_prefix == "client"
    route: dict[str, Any] = {"cluster": cluster, "timeout": "0s"}
    if "retry" in features and client:
        route["retry_policy"] = {
            "retry_on": _RETRY_ON,
            "num_retries": 2,
            "retry_host_predicate": [
                _typed("envoy.retry_host_predicates.previous_hosts", _PREVIOUS_HOSTS)
            ],
            "host_selection_retry_max_attempts": 5,
            "retriable_status_codes": [503],
        }
    routes = [{"match": {"prefix": "/"}, "route": route}]
    vhost = {"name": "all", "domains": ["*"], "routes": routes}
    out = _typed(
        "envoy.filters.network.http_connection_manager",
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        stat_prefix=stat_prefix,
        route_config={"virtual_hosts": [vhost]},
        http_filters=_filters(client, stat_prefix, features),
    )
    hcm = out["typed_config"]
    if "via" in features:
        hcm["via"] = stat_prefix
    if "paths" in features:
        hcm["normalize_path"] = True
        hcm["merge_slashes"] = True
    if "internal" in features:
        ranges = [{"address_prefix": a, "prefix_len": n} for a, n in _INTERNAL]
        hcm["internal_address_config"] = {"cidr_ranges": ranges}
        if not client:
            hcm["use_remote_address"] = True
    if "xfcc" in features and not client:
        hcm["forward_client_cert_details"] = "SANITIZE_SET"
        hcm["set_current_client_cert_details"] = {"uri": True}
    return out


def _cluster(name: str, port: int, *, h2: bool, tls: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "10s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {"address": "127.0.0.1", "port_value": port}
                                }
                            }
                        }
                    ]
                }
            ],
        },
    }
    if h2:
        out["typed_extension_protocol_options"] = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": _T + "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        }
    if tls is not None:
        out["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": _T + "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "common_tls_context": tls,
            },
        }
    return out


def _bootstrap(
    admin_port: int, listener_port: int, hcm: dict[str, Any], cluster: dict[str, Any]
) -> dict[str, Any]:
    return {
        "node": {"id": f"hand-{listener_port}", "cluster": "hand"},
        "admin": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}
        },
        "static_resources": {
            "listeners": [
                {
                    "name": "main",
                    "address": {
                        "socket_address": {"address": "127.0.0.1", "port_value": listener_port}
                    },
                    "filter_chains": [{"filters": [hcm]}],
                }
            ],
            "clusters": [cluster],
        },
    }


def client_bootstrap(
    pki: Pki, admin_port: int, port: int, server_port: int, features: frozenset[str] = frozenset()
) -> dict[str, Any]:
    tls = _tls_context(pki.client_cert, pki.client_key, pki.ca, SERVER_ID)
    cluster = _cluster("server", server_port, h2=True, tls=tls)
    if "cluster" in features:
        cluster["lb_policy"] = "LEAST_REQUEST"
        cluster["circuit_breakers"] = {
            "thresholds": [
                {
                    "max_connections": 4294967295,
                    "max_pending_requests": 4294967295,
                    "max_requests": 4294967295,
                    "max_retries": 4294967295,
                    "track_remaining": True,
                }
            ]
        }
    return _bootstrap(admin_port, port, _hcm("client", "server", features), cluster)


def server_bootstrap(
    pki: Pki, admin_port: int, port: int, app_port: int, features: frozenset[str] = frozenset()
) -> dict[str, Any]:
    out = _bootstrap(
        admin_port,
        port,
        _hcm("server", "app", features),
        _cluster("app", app_port, h2=False, tls=None),
    )
    listener = out["static_resources"]["listeners"][0]
    if "inspector" in features:
        listener["listener_filters"] = [
            {
                "name": "envoy.filters.listener.tls_inspector",
                "typed_config": {
                    "@type": _T + "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
                },
            }
        ]
        listener["filter_chains"][0]["filter_chain_match"] = {"transport_protocol": "tls"}
    ctx = _tls_context(pki.server_cert, pki.server_key, pki.ca, CLIENT_ID)
    listener["filter_chains"][0]["transport_socket"] = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": _T + "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "require_client_certificate": True,
            "common_tls_context": ctx,
        },
    }
    return out


@contextlib.contextmanager
def hand_chain(
    workdir: Path, app_port: int, features: frozenset[str] = frozenset()
) -> Iterator[tuple[int, list[int]]]:
    """Run the chain in front of the app on `app_port`; yield the client Envoy's port and
    both Envoys' pids (for their CPU per request). `features` adds pieces of shoal's sidecar
    config (FEATURES) to the hand-written one, to find what each costs."""
    pki = make_pki(workdir / "pki")
    client_port, server_port = free_port(), free_port()
    server = EnvoyProcess(
        server_bootstrap(pki, free_port(), server_port, app_port, features),
        workdir,
        name="hand-server",
    )
    client = EnvoyProcess(
        client_bootstrap(pki, free_port(), client_port, server_port, features),
        workdir,
        name="hand-client",
    )
    with server, client:
        assert server.proc is not None and client.proc is not None
        yield client_port, [client.proc.pid, server.proc.pid]
