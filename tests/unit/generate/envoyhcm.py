"""A real Envoy with one HTTP listener that answers 200 itself, for checking what a generated
piece of an HCM (access loggers) does with real requests. A binary bootstrap: the generator
appends fields in wire form that a JSON/YAML bootstrap would lose."""

from __future__ import annotations

import contextlib
import subprocess
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.route.v3 import route_components_pb2
from envoy.extensions.filters.http.lua.v3 import lua_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import json_format

from harness import procs
from harness.ports import free_ports
from harness.wait import wait_until
from shoal.agent.metricsport import admin_cluster, metrics_listener

# the metrics port's Lua filter: ParseDict must know its type
_TYPES = (lua_pb2.Lua,)
ENVOY = Path(__file__).resolve().parents[3] / ".venv" / "bin" / "envoy"


def get(url: str, headers: dict[str, str] | None = None, data: bytes | None = None) -> str:
    req = urllib.request.Request(url, headers=headers or {}, data=data)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return str(resp.read().decode())


def bootstrap(
    admin: int,
    port: int,
    access_logs: Iterable[accesslog_pb2.AccessLog],
    http_filters: Iterable[hcm_pb2.HttpFilter],
    metrics: int,
) -> bootstrap_pb2.Bootstrap:
    hcm = hcm_pb2.HttpConnectionManager(stat_prefix="test")
    vhost = hcm.route_config.virtual_hosts.add(name="any", domains=["*"])
    vhost.routes.add(
        match=route_components_pb2.RouteMatch(prefix="/"),
        direct_response=route_components_pb2.DirectResponseAction(status=200),
    )
    hcm.http_filters.extend(http_filters)
    hcm.http_filters.add(name="envoy.filters.http.router").typed_config.Pack(router_pb2.Router())
    hcm.access_log.extend(access_logs)
    boot = bootstrap_pb2.Bootstrap()
    boot.admin.address.socket_address.address = "127.0.0.1"
    boot.admin.address.socket_address.port_value = admin
    listener = boot.static_resources.listeners.add(name="test")
    listener.address.socket_address.address = "127.0.0.1"
    listener.address.socket_address.port_value = port
    chain = listener.filter_chains.add()
    chain.filters.add(name="envoy.filters.network.http_connection_manager").typed_config.Pack(hcm)
    if metrics:  # the agent's metrics port (Istio's names, `unknown` defaults)
        json_format.ParseDict(
            metrics_listener("127.0.0.1", metrics), boot.static_resources.listeners.add()
        )
        json_format.ParseDict(admin_cluster(admin), boot.static_resources.clusters.add())
    return boot


@contextlib.contextmanager
def envoy_with(
    tmp_path: Path,
    access_logs: Iterable[accesslog_pb2.AccessLog],
    http_filters: Iterable[hcm_pb2.HttpFilter] = (),
) -> Iterator[tuple[int, int, int]]:
    """Run Envoy; yield (admin port, listener port, metrics port); always stop it."""
    admin, port, metrics = free_ports(3)
    path = tmp_path / "boot.pb"
    boot = bootstrap(admin, port, access_logs, http_filters, metrics)
    path.write_bytes(boot.SerializeToString())
    with (tmp_path / "envoy.log").open("wb") as log:
        argv = [str(ENVOY), "-c", str(path), "--disable-hot-restart", "--concurrency", "1"]
        proc = subprocess.Popen(
            [*argv, "-l", "warn"], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        procs.register(proc)
        try:
            wait_until(
                lambda: get(f"http://127.0.0.1:{admin}/ready") == "LIVE\n", 30, what="Envoy ready"
            )
            yield admin, port, metrics
        finally:
            procs.terminate(proc)
