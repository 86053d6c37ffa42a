"""Real Envoy processes for end-to-end tests: bootstraps, start/stop, and admin API reads.

``sidecar_bootstrap`` builds the bootstrap ``shoal agent`` would write for a sidecar in
INTERCEPTION_MODE NONE: only the node identity, an ADS cluster pointing at the control plane
and the admin listener. Everything else (clusters, listeners, routes) must come over xDS.
``EnvoyProcess`` runs Envoy from any bootstrap (a dict, or literal YAML text for tests that
must not depend on our helper) and keeps its log for failure messages.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import yaml

from harness import procs
from harness.adminhttp import get_json, request
from harness.wait import wait_until
from shoal.agent.bootstrap import layered_runtime

ENVOY_BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "envoy"

ApiType = Literal["GRPC", "DELTA_GRPC"]

_HTTP_PROTOCOL_OPTIONS = (
    "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
)


def sidecar_node(
    name: str,
    namespace: str = "default",
    *,
    outbound_port: int,
    inbound_port: int,
    labels: dict[str, str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Return (node id, metadata) for a NONE-mode sidecar, in Istio's format."""
    node_id = f"sidecar~127.0.0.1~{name}.{namespace}~{namespace}.svc.cluster.local"
    metadata: dict[str, Any] = {
        "NAMESPACE": namespace,
        "LABELS": {"app": name, **(labels or {})},
        "SERVICE_ACCOUNT": name,
        "INSTANCE_IPS": "127.0.0.1",
        "WORKLOAD_NAME": name,
        "INTERCEPTION_MODE": "NONE",
        # Strings, as Istio's agent writes them: the control plane must parse them.
        "OUTBOUND_PORT": str(outbound_port),
        "INBOUND_PORT": str(inbound_port),
    }
    return node_id, metadata


def sidecar_bootstrap(
    node_id: str,
    metadata: dict[str, Any],
    xds_port: int,
    admin_port: int,
    api_type: ApiType = "GRPC",
) -> dict[str, Any]:
    """Return an Envoy bootstrap that gets all its config from shoal over ADS.

    ``ADMIN_PORT`` joins the metadata (unless the caller set it) because only the bootstrap
    knows the admin port, and the control plane reports it in syncz for ``shoal proxy-config``.
    """
    return {
        "node": {
            "id": node_id,
            "cluster": metadata.get("WORKLOAD_NAME", "shoal"),
            "metadata": {"ADMIN_PORT": str(admin_port), **metadata},
        },
        "admin": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}
        },
        "dynamic_resources": {
            "ads_config": {
                "api_type": api_type,
                "transport_api_version": "V3",
                "grpc_services": [
                    {
                        "envoy_grpc": {
                            "cluster_name": "xds-grpc",
                            # Short back-off so a restarted control plane is found within
                            # 0.5 s; Envoy reads it for ADS only here, inside envoy_grpc.
                            "retry_policy": {
                                "retry_back_off": {"base_interval": "0.1s", "max_interval": "0.5s"}
                            },
                        }
                    }
                ],
                "set_node_on_first_message_only": True,
            },
            "cds_config": {"ads": {}, "resource_api_version": "V3"},
            "lds_config": {"ads": {}, "resource_api_version": "V3"},
        },
        # as every bootstrap shoal writes (agent/bootstrap.py): RE2's program-size limit raised
        "layered_runtime": layered_runtime(),
        "static_resources": {
            "clusters": [
                {
                    "name": "xds-grpc",
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "load_assignment": {
                        "cluster_name": "xds-grpc",
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {
                                        "endpoint": {
                                            "address": {
                                                "socket_address": {
                                                    "address": "127.0.0.1",
                                                    "port_value": xds_port,
                                                }
                                            }
                                        }
                                    }
                                ]
                            }
                        ],
                    },
                    # gRPC needs HTTP/2 to the control plane.
                    "typed_extension_protocol_options": {
                        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                            "@type": _HTTP_PROTOCOL_OPTIONS,
                            "explicit_http_config": {"http2_protocol_options": {}},
                        }
                    },
                }
            ]
        },
    }


def write_bootstrap(bootstrap: dict[str, Any] | str, directory: Path) -> Path:
    """Write ``bootstrap`` (a dict, or YAML text as-is) to a new file in ``directory``."""
    text = bootstrap if isinstance(bootstrap, str) else yaml.safe_dump(bootstrap, sort_keys=False)
    fd, name = tempfile.mkstemp(prefix="envoy-", suffix=".yaml", dir=directory)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return Path(name)


def _admin_port_of(bootstrap: dict[str, Any] | str) -> int:
    data = yaml.safe_load(bootstrap) if isinstance(bootstrap, str) else bootstrap
    return int(data["admin"]["address"]["socket_address"]["port_value"])


class EnvoyProcess:
    """One Envoy process; a context manager that always stops and reaps it.

    ``wait="ready"`` returns from ``start`` once admin ``/ready`` is 200 (Envoy is LIVE: its
    first CDS and LDS arrived); ``wait="admin"`` returns as soon as the admin API answers, for
    tests that watch config arrive.
    """

    def __init__(
        self,
        bootstrap: dict[str, Any] | str,
        workdir: Path,
        *,
        name: str = "envoy",
        wait: Literal["ready", "admin"] = "ready",
        start_timeout: float = 15.0,
    ) -> None:
        self.name = name
        self.workdir = workdir
        self.bootstrap = bootstrap
        self.admin_port = _admin_port_of(bootstrap)
        self.admin_url = f"http://127.0.0.1:{self.admin_port}"
        self.log_path = workdir / f"{name}.log"
        self._wait = wait
        self._start_timeout = start_timeout
        self.proc: subprocess.Popen[bytes] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        path = write_bootstrap(self.bootstrap, self.workdir)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(ENVOY_BIN),
                    "-c",
                    str(path),
                    "--disable-hot-restart",
                    "--log-level",
                    "warn",
                    # Short drain so a changed listener's old connections go away quickly.
                    "--drain-time-s",
                    "1",
                    "--concurrency",
                    "1",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        procs.register(self.proc)
        try:
            endpoint = "/ready" if self._wait == "ready" else "/server_info"
            wait_until(
                lambda: (
                    self._alive() and request("GET", self.admin_url + endpoint, timeout=1)[0] == 200
                ),
                self._start_timeout,
                what=f"{self.name} admin {endpoint} to answer 200",
                describe=self.describe,
            )
        except BaseException:
            self.stop()
            raise
        return self

    def _alive(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}\n{self.log_tail()}")
        return True

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc is not None:
            procs.terminate(self.proc, timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    # -- admin API ---------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Counters and gauges by name (histograms and text readouts left out)."""
        data = get_json(self.admin_url + "/stats?format=json")
        return {
            s["name"]: s["value"]
            for s in data["stats"]
            if isinstance(s.get("value"), int) and not isinstance(s.get("value"), bool)
        }

    def stat(self, name: str) -> int:
        """One counter or gauge; 0 if Envoy has not created it yet."""
        return self.stats().get(name, 0)

    def config_dump(self) -> dict[str, Any]:
        data: dict[str, Any] = get_json(self.admin_url + "/config_dump")
        return data

    def clusters(self) -> dict[str, list[str]]:
        """Active clusters by name, each with its hosts as ``ip:port``."""
        data = get_json(self.admin_url + "/clusters?format=json")
        out: dict[str, list[str]] = {}
        for status in data.get("cluster_statuses", []):
            hosts = []
            for host in status.get("host_statuses", []):
                sock = host["address"].get("socket_address", {})
                hosts.append(f"{sock.get('address')}:{sock.get('port_value')}")
            out[status["name"]] = sorted(hosts)
        return out

    def listeners(self) -> list[str]:
        data = get_json(self.admin_url + "/listeners?format=json")
        return [ls["name"] for ls in data.get("listener_statuses", [])]

    def wait_for(
        self, predicate: Callable[[Self], Any], timeout: float = 10.0, what: str = "condition"
    ) -> Any:
        """Poll ``predicate(self)`` until truthy; fail with the Envoy log tail."""
        return wait_until(
            lambda: self._alive() and predicate(self),
            timeout,
            what=f"{self.name}: {what}",
            describe=self.describe,
        )

    # -- diagnostics -------------------------------------------------------------------------

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def describe(self) -> str:
        return f"--- {self.name} log ({self.log_path}) ---\n{self.log_tail()}"


def wait_stat_stable(envoy: EnvoyProcess, name: str, duration: float) -> int:
    """Return the value of stat ``name`` after checking it did not move for ``duration`` s."""
    first = envoy.stat(name)
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        now = envoy.stat(name)
        if now != first:
            raise AssertionError(f"{envoy.name}: {name} moved from {first} to {now}")
        time.sleep(0.1)
    return first
