"""A test-only SDS provider: a mesh CA minted in the test and a real gRPC
SecretDiscoveryService serving one workload's `default` and `ROOTCA` secrets.

It stands in for the agent's SDS server where a test wants certificates in Envoy without
the CA and agent: `secure_sidecar_bootstrap` adds the `sds-grpc` cluster (the contract of
generate/mtls.py) pointing at it and the `SECURE: "true"` node metadata. Certificates carry
the SPIFFE id `spiffe://cluster.local/ns/<ns>/sa/<sa>` as their only URI SAN.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc

from harness.envoy import sidecar_bootstrap, sidecar_node
from harness.ports import free_port
from shoal.ca import certs

SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"


class TestCA:
    """A root (shoal's own CA code) that issues SPIFFE workload certificates directly, without
    the CA service, tokens or agent."""

    __test__ = False  # not a pytest class

    def __init__(self, lifetime: datetime.timedelta = datetime.timedelta(hours=1)) -> None:
        self.key = certs.new_key()
        self.cert = certs.make_root(self.key, days=1)
        self.lifetime = lifetime

    @property
    def root_pem(self) -> str:
        return certs.cert_pem(self.cert).decode()

    def issue(self, spiffe_id: str) -> tuple[str, str]:
        """(certificate PEM, key PEM) for `spiffe_id`, signed by this root."""
        key = certs.new_key()
        cert = certs.leaf(
            key.public_key(),
            uri=spiffe_id,
            issuer=self.cert,
            issuer_key=self.key,
            lifetime=self.lifetime,
        )
        return certs.cert_pem(cert).decode(), certs.key_pem(key).decode()


class _Servicer(sds_pb2_grpc.SecretDiscoveryServiceServicer):  # type: ignore[misc]
    def __init__(self, secrets: dict[str, secret_pb2.Secret]) -> None:
        self.secrets = secrets
        self.nonces = itertools.count(1)

    def StreamSecrets(
        self, request_iterator: Iterator[discovery_pb2.DiscoveryRequest], context: Any
    ) -> Iterator[discovery_pb2.DiscoveryResponse]:
        sent: dict[str, frozenset[str]] = {}
        for req in request_iterator:
            names = frozenset(req.resource_names)
            if req.response_nonce and sent.get(req.response_nonce) == names:
                continue  # an ACK (or NACK) of what we sent: nothing new to say
            nonce = str(next(self.nonces))
            sent[nonce] = names
            resp = discovery_pb2.DiscoveryResponse(
                version_info="1", nonce=nonce, type_url=SECRET_TYPE
            )
            for name in sorted(names):
                if name in self.secrets:
                    resp.resources.add().Pack(self.secrets[name])
            yield resp


class TestSdsServer:
    """gRPC SDS on 127.0.0.1:`port` serving `default` (the workload cert) and `ROOTCA`."""

    __test__ = False

    def __init__(self, ca: TestCA, spiffe_id: str) -> None:
        cert, key = ca.issue(spiffe_id)
        default = secret_pb2.Secret(name="default")
        default.tls_certificate.certificate_chain.inline_string = cert
        default.tls_certificate.private_key.inline_string = key
        root = secret_pb2.Secret(name="ROOTCA")
        root.validation_context.trusted_ca.inline_string = ca.root_pem
        self.port = free_port()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        sds_pb2_grpc.add_SecretDiscoveryServiceServicer_to_server(
            _Servicer({"default": default, "ROOTCA": root}), self._server
        )
        self._server.add_insecure_port(f"127.0.0.1:{self.port}")

    def start(self) -> TestSdsServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=0)


def spiffe(name: str, namespace: str = "default") -> str:
    return f"spiffe://cluster.local/ns/{namespace}/sa/{name}"


def secure_sidecar_bootstrap(
    xds_port: int,
    name: str,
    sds_port: int,
    *,
    app_port: int | None = None,
    labels: dict[str, str] | None = None,
) -> tuple[dict[str, Any], int, int]:
    """A NONE-mode sidecar with SDS at `sds_port` (service account = `name`).

    Returns (bootstrap, outbound port, inbound port).
    """
    outbound, inbound = free_port(), free_port()
    node_id, metadata = sidecar_node(
        name, outbound_port=outbound, inbound_port=inbound, labels=labels
    )
    metadata["SECURE"] = "true"
    if app_port is not None:
        metadata["APP_PORT"] = str(app_port)
    boot = sidecar_bootstrap(node_id, metadata, xds_port, free_port())
    xds = boot["static_resources"]["clusters"][0]
    sds = {**xds, "name": "sds-grpc"}
    sds["load_assignment"] = {
        "cluster_name": "sds-grpc",
        "endpoints": [
            {
                "lb_endpoints": [
                    {
                        "endpoint": {
                            "address": {
                                "socket_address": {"address": "127.0.0.1", "port_value": sds_port}
                            }
                        }
                    }
                ]
            }
        ],
    }
    boot["static_resources"]["clusters"].append(sds)
    return boot, outbound, inbound
