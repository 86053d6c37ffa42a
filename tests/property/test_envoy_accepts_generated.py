"""Property: whatever valid Istio config hypothesis invents, Envoy accepts what shoal generates.

Each example is real YAML text run through the whole pure pipeline (load, validate, snapshot,
generate), then every generated cluster, listener and route table is handed to the real Envoy
binary in `--mode validate`, which runs Envoy's own config checks without serving traffic.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal.api import ConfigStore
from shoal.generate import CLUSTER, LISTENER, ROUTE, ConfigGenerator
from shoal.generate.prepared import unpack
from shoal.model import build_snapshot, parse_proxy

ENVOY = shutil.which("envoy", path=str(Path(sys.executable).parent)) or "envoy"

SUBSETS = ("v1", "v2")

_DUR = st.sampled_from(["1ms", "250ms", "1s", "30s", "5m"])
# Envoy holds keepalive times as whole seconds, and Linux refuses 0 (api/trafficpolicy.py)
_KEEPALIVE = st.sampled_from(["1s", "30s", "5m"])
_N = st.integers(0, 1000)
_LB = st.one_of(
    st.builds(lambda s: {"simple": s}, st.sampled_from(["ROUND_ROBIN", "LEAST_REQUEST", "RANDOM"])),
    st.builds(
        lambda key, algo: {"consistentHash": {**key, **algo}},
        st.sampled_from(
            [
                {"httpHeaderName": "x-user"},
                {"useSourceIp": True},
                {"httpQueryParameterName": "u"},
                {"httpCookie": {"name": "s", "path": "/", "ttl": "0s"}},
                {"httpCookie": {"name": "s", "attributes": [{"name": "SameSite", "value": "Lax"}]}},
            ]
        ),
        st.sampled_from([{}, {"ringHash": {"minimumRingSize": 64}}, {"maglev": {"tableSize": 5}}]),
    ),
)
_TCP = {"maxConnections": _N, "connectTimeout": _DUR, "maxConnectionDuration": _DUR}
_HTTP = {"http1MaxPendingRequests": _N, "http2MaxRequests": _N, "maxRetries": _N}
_POOL = st.fixed_dictionaries(
    {},
    optional={
        "tcp": st.fixed_dictionaries(
            {},
            optional={
                **_TCP,
                "idleTimeout": _DUR,
                "tcpKeepalive": st.fixed_dictionaries(
                    {},
                    optional={
                        "probes": st.integers(1, 9),
                        "time": _KEEPALIVE,
                        "interval": _KEEPALIVE,
                    },
                ),
            },
        ),
        "http": st.fixed_dictionaries(
            {},
            optional={
                **_HTTP,
                "maxRequestsPerConnection": _N,
                "maxConcurrentStreams": _N,
                "idleTimeout": _DUR,
                "h2UpgradePolicy": st.sampled_from(["DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"]),
            },
        ),
    },
)
_OUTLIER = st.fixed_dictionaries(
    {},
    optional={
        "consecutive5xxErrors": st.integers(0, 10),
        "consecutiveGatewayErrors": st.integers(0, 10),
        "interval": _DUR,
        "baseEjectionTime": _DUR,
        "maxEjectionPercent": st.integers(0, 100),
        "minHealthPercent": st.integers(0, 100),
        "splitExternalLocalOriginErrors": st.booleans(),
        "consecutiveLocalOriginFailures": st.integers(0, 10),
    },
)
_PARTS = {"loadBalancer": _LB, "connectionPool": _POOL, "outlierDetection": _OUTLIER}


def traffic_policy(numbers: list[int]) -> st.SearchStrategy[dict[str, Any]]:
    """A DestinationRule trafficPolicy, possibly with a portLevelSettings entry."""
    port_level = st.sampled_from(numbers).flatmap(
        lambda n: st.fixed_dictionaries({"port": st.just({"number": n})}, optional=_PARTS)
    )
    budget = st.fixed_dictionaries(
        {}, optional={"percent": st.floats(0, 100), "minRetryConcurrency": st.integers(0, 10)}
    )
    return st.fixed_dictionaries(
        {},
        optional={
            **_PARTS,
            "retryBudget": budget,
            "portLevelSettings": st.lists(port_level, max_size=1),
        },
    )


@st.composite
def mesh(draw: st.DrawFn) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    n = draw(st.integers(1, 3))
    for i in range(n):
        ns = draw(st.sampled_from(["default", "shop"]))
        host = f"svc{i}.{ns}.svc.cluster.local"
        numbers = draw(
            st.lists(st.sampled_from([80, 8080, 9090]), min_size=1, max_size=2, unique=True)
        )
        protocols = [draw(st.sampled_from(["HTTP", "HTTP2", "GRPC", "TCP"])) for _ in numbers]
        ports = [
            {"number": p, "name": f"p{p}", "protocol": proto}
            for p, proto in zip(numbers, protocols, strict=True)
        ]
        dns = draw(st.booleans())
        endpoints = [
            {
                "address": f"svc{i}-{k}.example.internal" if dns else f"10.0.{i}.{k + 1}",
                "labels": {"version": SUBSETS[k % 2]},
            }
            for k in range(draw(st.integers(1, 3)))
        ]
        docs.append(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "ServiceEntry",
                "metadata": {"name": f"svc{i}", "namespace": ns},
                "spec": {
                    "hosts": [host],
                    "location": "MESH_INTERNAL",
                    "resolution": "DNS" if dns else "STATIC",
                    "ports": ports,
                    "endpoints": endpoints,
                },
            }
        )
        policy = draw(traffic_policy(numbers))
        subset_policies = [draw(st.none() | traffic_policy(numbers)) for _ in SUBSETS]
        docs.append(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "metadata": {"name": f"svc{i}", "namespace": ns},
                "spec": {
                    "host": host,
                    "trafficPolicy": policy,
                    "subsets": [
                        {"name": s, "labels": {"version": s}}
                        | ({"trafficPolicy": p} if p is not None else {})
                        for s, p in zip(SUBSETS, subset_policies, strict=True)
                    ],
                },
            }
        )
        if draw(st.booleans()):
            docs.append(virtual_service(draw, i, ns, host, numbers))
    return docs


def virtual_service(
    draw: st.DrawFn, i: int, ns: str, host: str, numbers: list[int]
) -> dict[str, Any]:
    routes = []
    for _ in range(draw(st.integers(1, 3))):
        match: dict[str, Any] = {}
        kind = draw(st.sampled_from(["prefix", "exact", "regex", None]))
        if kind == "prefix":
            match["uri"] = {"prefix": "/api"}
        elif kind == "exact":
            match["uri"] = {"exact": "/health"}
        elif kind == "regex":
            match["uri"] = {"regex": "/items/[0-9]+"}
        if draw(st.booleans()):
            match["headers"] = {"x-user": {draw(st.sampled_from(["exact", "prefix"])): "jason"}}
        if draw(st.booleans()):
            match["method"] = {"exact": "GET"}
        split = draw(st.integers(0, 100))
        port = {"number": draw(st.sampled_from(numbers))}
        dests = [
            {"destination": {"host": host, "subset": "v1", "port": port}, "weight": split},
            {"destination": {"host": host, "subset": "v2", "port": port}, "weight": 100 - split},
        ]
        route: dict[str, Any] = {"route": dests}
        if match:
            route["match"] = [match]
        if draw(st.booleans()):
            route["timeout"] = draw(st.sampled_from(["0.5s", "2s", "1m", "250ms"]))
        route.update(draw(route_policies(host, port)))
        routes.append(route)
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": f"svc{i}", "namespace": ns},
        "spec": {"hosts": [host], "http": routes},
    }


@st.composite
def route_policies(draw: st.DrawFn, host: str, port: dict[str, int]) -> dict[str, Any]:
    """Random retries, fault, mirror, rewrite, CORS and headers for one HTTP route."""
    out: dict[str, Any] = {}
    percent = st.floats(0, 100, allow_nan=False).map(lambda v: {"value": round(v, 3)})
    if draw(st.booleans()):
        retries: dict[str, Any] = {"attempts": draw(st.integers(0, 5))}
        if draw(st.booleans()):
            retries["retryOn"] = draw(st.sampled_from(["5xx", "gateway-error,503", "reset,429"]))
        if draw(st.booleans()):
            retries["perTryTimeout"] = draw(st.sampled_from(["100ms", "1s"]))
        if draw(st.booleans()):
            retries["retryRemoteLocalities"] = draw(st.booleans())
        out["retries"] = retries
    if draw(st.booleans()):
        fault: dict[str, Any] = {}
        if draw(st.booleans()):
            fault["delay"] = {"percentage": draw(percent), "fixedDelay": "5ms"}
        if not fault or draw(st.booleans()):
            abort = draw(st.sampled_from([{"httpStatus": 503}, {"grpcStatus": "UNAVAILABLE"}]))
            fault["abort"] = {"percentage": draw(percent), **abort}
        out["fault"] = fault
    if draw(st.booleans()):
        out["mirror"] = {"host": host, "subset": "v2", "port": port}
        out["mirrorPercentage"] = draw(percent)
    if draw(st.booleans()):
        out["rewrite"] = draw(
            st.sampled_from(
                [
                    {"uri": "/v2"},
                    {"authority": "new.example"},
                    {"uriRegexRewrite": {"match": "^/items/([0-9]+)", "rewrite": "/i/\\1"}},
                ]
            )
        )
    if draw(st.booleans()):
        out["corsPolicy"] = {
            "allowOrigins": [{"exact": "https://example.com"}, {"regex": "https://.*[.]ex"}],
            "allowMethods": ["GET"],
            "maxAge": "1h",
            "allowCredentials": draw(st.booleans()),
        }
    return out


def bootstrap(gen: ConfigGenerator) -> bootstrap_pb2.Bootstrap:
    proxy = parse_proxy(
        "sidecar~127.0.0.1~client.default~default.svc.cluster.local",
        {
            "NAMESPACE": "default",
            "INTERCEPTION_MODE": "NONE",
            "OUTBOUND_PORT": "15001",
            "INBOUND_PORT": "15006",
            "APP_PORT": "8080",
        },
    )
    view = gen.view(proxy)
    boot = bootstrap_pb2.Bootstrap()
    boot.node.id = proxy.node_id
    boot.node.cluster = "client"
    xds = boot.static_resources.clusters.add(name="xds-grpc", type=cluster_pb2.Cluster.STATIC)
    xds.connect_timeout.FromSeconds(1)
    boot.dynamic_resources.ads_config.api_type = boot.dynamic_resources.ads_config.GRPC
    boot.dynamic_resources.ads_config.transport_api_version = 2  # V3
    boot.dynamic_resources.ads_config.grpc_services.add().envoy_grpc.cluster_name = "xds-grpc"
    for res in view.of(CLUSTER).values():
        cluster = unpack(res, cluster_pb2.Cluster())
        boot.static_resources.clusters.append(cluster)
    routes = {n: unpack(r, route_pb2.RouteConfiguration()) for n, r in view.of(ROUTE).items()}
    for res in view.of(LISTENER).values():
        listener = unpack(res, listener_pb2.Listener())
        assert isinstance(listener, listener_pb2.Listener)
        for chain in listener.filter_chains:
            for f in chain.filters:
                hcm = hcm_pb2.HttpConnectionManager()
                f.typed_config.Unpack(hcm)
                if hcm.HasField("rds"):
                    # inline the route table so Envoy validates it too (RDS is not fetched here)
                    hcm.route_config.CopyFrom(routes[hcm.rds.route_config_name])
                f.typed_config.Pack(hcm)
        boot.static_resources.listeners.append(listener)
    return boot


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(docs=mesh())
def test_envoy_accepts_everything_shoal_generates(
    tmp_path: Path, docs: list[dict[str, Any]]
) -> None:
    text = yaml.safe_dump_all(docs, sort_keys=False)
    result = ConfigStore().update({"mesh.yaml": text})
    assert not result.errors, [str(e) for e in result.errors]
    gen = ConfigGenerator(build_snapshot("prop.1", result.resources))
    # binary, not JSON: the python protos lack fields Envoy 1.40 has (stats_scope, telemetry)
    path = tmp_path / "bootstrap.pb"
    path.write_bytes(bootstrap(gen).SerializeToString())
    proc = subprocess.run(
        [ENVOY, "--mode", "validate", "-c", str(path), "--disable-hot-restart", "-l", "error"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:] + "\n" + text
