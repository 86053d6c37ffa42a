"""What secure mode adds to a bootstrap: SDS from the agent, TLS and a token towards xDS.

- a static cluster `sds-grpc` (HTTP/2 over the agent's Unix socket); generated config names
  the secrets `default` and `ROOTCA` with `sds_config` pointing at it (`sds_config`);
- the `xds-grpc` cluster speaks TLS, trusts `ROOTCA` and accepts only the control plane's
  SPIFFE id;
- the ADS stream carries `authorization: Bearer <token>` (so the bootstrap file holds the
  token: the agent writes it 0600 into its private directory);
- node metadata `SECURE: "true"`, which tells the generator to use mTLS for this proxy.
"""

from __future__ import annotations

import copy
from typing import Any

from shoal.ca.identity import CONTROL_PLANE, CONTROL_PLANE_DNS

_TYPE = "type.googleapis.com/"
SDS_CLUSTER = "sds-grpc"


def sds_config() -> dict[str, Any]:
    """Where Envoy asks for a secret: the agent's SDS server (a fresh dict per use)."""
    return {
        "api_config_source": {
            "api_type": "GRPC",
            "transport_api_version": "V3",
            "grpc_services": [{"envoy_grpc": {"cluster_name": SDS_CLUSTER}}],
        },
        "resource_api_version": "V3",
    }


def sds_cluster(socket_path: str) -> dict[str, Any]:
    return {
        "name": SDS_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": _TYPE + "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "load_assignment": {
            "cluster_name": SDS_CLUSTER,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": {"pipe": {"path": socket_path}}}}]}
            ],
        },
    }


def xds_tls() -> dict[str, Any]:
    """Upstream TLS to the control plane, verified against the mesh roots from SDS."""
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": _TYPE + "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": CONTROL_PLANE_DNS,
            "common_tls_context": {
                "alpn_protocols": ["h2"],
                "combined_validation_context": {
                    "default_validation_context": {
                        "match_typed_subject_alt_names": [
                            {"san_type": "URI", "matcher": {"exact": CONTROL_PLANE.spiffe_id}}
                        ]
                    },
                    "validation_context_sds_secret_config": {
                        "name": "ROOTCA",
                        "sds_config": sds_config(),
                    },
                },
            },
        },
    }


def secure(bootstrap: dict[str, Any], *, sds_socket: str, token: str) -> dict[str, Any]:
    """A copy of `bootstrap` with SDS, TLS to xDS, the token and `SECURE` metadata."""
    out = copy.deepcopy(bootstrap)
    out["node"]["metadata"]["SECURE"] = "true"
    ads = out["dynamic_resources"]["ads_config"]["grpc_services"][0]
    ads["initial_metadata"] = [{"key": "authorization", "value": f"Bearer {token}"}]
    clusters = out["static_resources"]["clusters"]
    for cluster in clusters:
        if cluster["name"] == "xds-grpc":
            cluster["transport_socket"] = xds_tls()
    clusters.append(sds_cluster(sds_socket))
    return out
