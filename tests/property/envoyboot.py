"""One Envoy bootstrap holding everything shoal generates for one sidecar, to validate or serve.

`--mode validate` runs all of Envoy's config checks in about 0.1 s, so a whole generated mesh
goes into one bootstrap as static resources (route tables inlined into their listeners, as RDS
is not fetched). For serving, EDS clusters become STATIC ones with their generated endpoints,
so a real Envoy answers through the generated routes without a control plane. The runtime is
the one every shoal bootstrap sets (RE2's program-size limit raised).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import json_format

from shoal.agent.bootstrap import layered_runtime
from shoal.agent.process import find_envoy
from shoal.agent.securebootstrap import sds_cluster
from shoal.generate import CLUSTER, LISTENER, ROUTE, ConfigGenerator
from shoal.generate.prepared import ENDPOINT, unpack
from shoal.model import Proxy, parse_proxy


def sidecar(outbound_port: int = 15001, inbound_port: int = 15006) -> Proxy:
    return parse_proxy(
        "sidecar~127.0.0.1~client.default~default.svc.cluster.local",
        {
            "NAMESPACE": "default",
            "INTERCEPTION_MODE": "NONE",
            "OUTBOUND_PORT": str(outbound_port),
            "INBOUND_PORT": str(inbound_port),
            "APP_PORT": "8080",
        },
    )


def secure_sidecar(outbound_port: int = 15001, inbound_port: int = 15006) -> Proxy:
    """A secure sidecar (SDS, mTLS) of the workload `app: client`, serving its app on 8080."""
    return parse_proxy(
        "sidecar~127.0.0.1~client.default~default.svc.cluster.local",
        {
            "NAMESPACE": "default",
            "LABELS": {"app": "client", "version": "v1"},
            "SERVICE_ACCOUNT": "client",
            "INSTANCE_IPS": "127.0.0.1",
            "INTERCEPTION_MODE": "NONE",
            "OUTBOUND_PORT": str(outbound_port),
            "INBOUND_PORT": str(inbound_port),
            "APP_PORT": "8080",
            "SECURE": "true",
            "SERVICE_HOST": "client.default.svc.cluster.local",
        },
    )


def gateway_router() -> Proxy:
    """A secure ingress gateway (`router` node) labelled `istio: ingressgateway`."""
    return parse_proxy(
        "router~127.0.0.1~ingress.default~default.svc.cluster.local",
        {
            "NAMESPACE": "default",
            "LABELS": {"istio": "ingressgateway"},
            "SERVICE_ACCOUNT": "ingress",
            "INSTANCE_IPS": "127.0.0.1",
            "SECURE": "true",
        },
    )


def bootstrap(
    gen: ConfigGenerator, proxy: Proxy, *, serve: bool = False
) -> bootstrap_pb2.Bootstrap:
    """Everything `gen` makes for `proxy` as static resources (STATIC clusters if `serve`)."""
    view = gen.view(proxy)
    boot = bootstrap_pb2.Bootstrap()
    boot.node.id = proxy.node_id
    boot.node.cluster = "client"
    json_format.ParseDict(layered_runtime(), boot.layered_runtime)
    if proxy.secure:  # the agent's SDS cluster, which generated TLS contexts name
        json_format.ParseDict(
            sds_cluster("/nonexistent/sds.sock"), boot.static_resources.clusters.add()
        )
    endpoints = {
        name: unpack(res, endpoint_pb2.ClusterLoadAssignment())
        for name, res in view.of(ENDPOINT).items()
    }
    if not serve:
        xds = boot.static_resources.clusters.add(name="xds-grpc", type=cluster_pb2.Cluster.STATIC)
        xds.connect_timeout.FromSeconds(1)
        ads = boot.dynamic_resources.ads_config
        ads.api_type = ads.GRPC
        ads.transport_api_version = 2  # V3
        ads.grpc_services.add().envoy_grpc.cluster_name = "xds-grpc"
    for name, res in view.of(CLUSTER).items():
        cluster = unpack(res, cluster_pb2.Cluster())
        assert isinstance(cluster, cluster_pb2.Cluster)
        if serve and cluster.type == cluster_pb2.Cluster.EDS:
            cluster.ClearField("eds_cluster_config")
            cluster.type = cluster_pb2.Cluster.STATIC
            if name in endpoints:
                cluster.load_assignment.CopyFrom(endpoints[name])
        boot.static_resources.clusters.append(cluster)
    routes = {n: unpack(r, route_pb2.RouteConfiguration()) for n, r in view.of(ROUTE).items()}
    for res in view.of(LISTENER).values():
        listener = unpack(res, listener_pb2.Listener())
        assert isinstance(listener, listener_pb2.Listener)
        for chain in listener.filter_chains:
            for f in chain.filters:
                hcm = hcm_pb2.HttpConnectionManager()
                if not f.typed_config.Unpack(hcm):
                    continue
                if hcm.HasField("rds"):
                    hcm.route_config.CopyFrom(routes[hcm.rds.route_config_name])
                f.typed_config.Pack(hcm)
        boot.static_resources.listeners.append(listener)
    return boot


def validate(boot: bootstrap_pb2.Bootstrap, directory: Path) -> tuple[bool, str]:
    """Run `envoy --mode validate` on `boot`; (accepted, Envoy's output)."""
    # Binary, not JSON: shoal appends fields newer than the python protos in wire form (the
    # stats logger's stats_scope), which a JSON rendering would silently drop.
    path = directory / "bootstrap.pb"
    path.write_bytes(boot.SerializeToString())
    proc = subprocess.run(
        [find_envoy(), "--mode", "validate", "-c", str(path), "--disable-hot-restart", "-l",
         "error"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    # Envoy's message frames a dump of the whole config: keep both ends
    return proc.returncode == 0, output if len(
        output
    ) < 5000 else f"{output[:400]} ... {output[-3000:]}"
