"""The xDS bootstrap a proxyless gRPC client starts from (`shoal bootstrap grpc`).

gRPC's xDS client reads it from the file named by GRPC_XDS_BOOTSTRAP (or the JSON itself in
GRPC_XDS_BOOTSTRAP_CONFIG) when a channel first dials an `xds:///` target (gRFC A27). It names
the control plane (`xds_servers`, plaintext, `xds_v3`) and who the client is: a node id in
shoal's format (DESIGN.md) with metadata GENERATOR "grpc", Istio's marker of a proxyless
client, so the control plane answers with API listeners instead of sidecar listeners.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class GrpcClientIdentity:
    """Who the gRPC client is, as the control plane should see it."""

    workload: str
    namespace: str = "default"
    pod: str = ""  # the instance name; the workload name when not given
    labels: Mapping[str, str] = field(default_factory=dict)
    service_account: str = "default"
    ip: str = "127.0.0.1"
    # where the workload's certificate lives (cert-chain.pem, key.pem, root-cert.pem, as
    # Istio's agent writes them): the client then does mTLS through gRPC's xDS credentials
    cert_dir: str = ""

    @property
    def node_id(self) -> str:
        pod = self.pod or self.workload
        return f"sidecar~{self.ip}~{pod}.{self.namespace}~{self.namespace}.svc.cluster.local"


def check_control_plane(address: str) -> str:
    """`HOST:PORT` as given, or ValueError saying what is wrong with it."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"control plane {address!r} must be HOST:PORT, e.g. 127.0.0.1:15010")
    return address


# how often gRPC's file_watcher provider rereads the files (certificates rotate by file)
CERT_REFRESH = "60s"


def certificate_providers(cert_dir: str) -> dict[str, Any]:
    """The `default` certificate provider (gRFC A29) over the files in `cert_dir`."""
    base = cert_dir.rstrip("/")
    return {
        "default": {
            "plugin_name": "file_watcher",
            "config": {
                "certificate_file": f"{base}/cert-chain.pem",
                "private_key_file": f"{base}/key.pem",
                "ca_certificate_file": f"{base}/root-cert.pem",
                "refresh_interval": CERT_REFRESH,
            },
        }
    }


def grpc_bootstrap(identity: GrpcClientIdentity, control_plane: str) -> dict[str, Any]:
    """The bootstrap as a JSON-ready dict."""
    out = _bootstrap(identity, control_plane)
    if identity.cert_dir:
        out["certificate_providers"] = certificate_providers(identity.cert_dir)
        # the control plane then sends clusters with mTLS through that provider
        out["node"]["metadata"]["SECURE"] = "true"
    return out


def _bootstrap(identity: GrpcClientIdentity, control_plane: str) -> dict[str, Any]:
    return {
        "xds_servers": [
            {
                "server_uri": check_control_plane(control_plane),
                "channel_creds": [{"type": "insecure"}],
                "server_features": ["xds_v3"],
            }
        ],
        "node": {
            "id": identity.node_id,
            "metadata": {
                "GENERATOR": "grpc",
                "NAMESPACE": identity.namespace,
                "WORKLOAD_NAME": identity.workload,
                "SERVICE_ACCOUNT": identity.service_account,
                "LABELS": dict(sorted(identity.labels.items())),
                "INSTANCE_IPS": identity.ip,
                # no traffic capture: the application dials xds:/// targets itself
                "INTERCEPTION_MODE": "NONE",
            },
            "locality": {},
        },
    }


def grpc_bootstrap_json(identity: GrpcClientIdentity, control_plane: str) -> str:
    return json.dumps(grpc_bootstrap(identity, control_plane), indent=2, sort_keys=True) + "\n"
