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
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from harness import procs
from harness.ports import free_ports
from harness.wait import wait_until

ENVOY = Path(__file__).resolve().parents[3] / ".venv" / "bin" / "envoy"


def get(url: str, headers: dict[str, str] | None = None) -> str:
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return str(resp.read().decode())


def _bootstrap(
    admin: int, port: int, access_logs: Iterable[accesslog_pb2.AccessLog]
) -> bootstrap_pb2.Bootstrap:
    hcm = hcm_pb2.HttpConnectionManager(stat_prefix="test")
    vhost = hcm.route_config.virtual_hosts.add(name="any", domains=["*"])
    vhost.routes.add(
        match=route_components_pb2.RouteMatch(prefix="/"),
        direct_response=route_components_pb2.DirectResponseAction(status=200),
    )
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
    return boot


@contextlib.contextmanager
def envoy_with(
    tmp_path: Path, access_logs: Iterable[accesslog_pb2.AccessLog]
) -> Iterator[tuple[int, int]]:
    """Run Envoy; yield (admin port, listener port); always stop it."""
    admin, port = free_ports(2)
    path = tmp_path / "boot.pb"
    path.write_bytes(_bootstrap(admin, port, access_logs).SerializeToString())
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
            yield admin, port
        finally:
            procs.terminate(proc)
