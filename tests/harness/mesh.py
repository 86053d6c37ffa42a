"""The scenario the e2e tests share: a ``reviews`` service with versioned subsets.

Three backends (v1, v2, v3) are the workloads of ``reviews.default.svc.cluster.local:80``,
declared by a STATIC ServiceEntry with ``version`` labels. DestinationRule and VirtualService
texts are built by small functions so each test states only what it changes. A ``Sidecar`` is
one Envoy fed by shoal, with the node identity of a NONE-mode Istio sidecar.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.backend import Backend
from harness.configdir import ConfigDir
from harness.controlplane import ControlPlane, wait_synced
from harness.envoy import ApiType, EnvoyProcess, sidecar_bootstrap, sidecar_node
from harness.load import fire
from harness.ports import free_port
from harness.wait import wait_until

NS = "default"
HOST = f"reviews.{NS}.svc.cluster.local"
SE_FILE = "reviews-se.yaml"
DR_FILE = "reviews-dr.yaml"
VS_FILE = "reviews-vs.yaml"


def service_entry(backends: dict[str, Backend], host: str = HOST, name: str = "reviews") -> str:
    """A STATIC ServiceEntry with one 127.0.0.1 endpoint per backend, labelled by version."""
    endpoints = "".join(
        f"""
  - address: 127.0.0.1
    ports:
      http: {backend.port}
    labels:
      version: {version}"""
        for version, backend in sorted(backends.items())
    )
    return f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: {name}
  namespace: {NS}
spec:
  hosts:
  - {host}
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - number: 80
    name: http
    protocol: HTTP
  endpoints:{endpoints}
"""


def destination_rule(*subsets: str) -> str:
    """A DestinationRule defining subsets by ``version`` label."""
    lines = "".join(
        f"""
  - name: {s}
    labels:
      version: {s}"""
        for s in subsets
    )
    return f"""apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: {NS}
spec:
  host: {HOST}
  subsets:{lines}
"""


def route(weights: dict[str, int], indent: str = "    ") -> str:
    """A ``route:`` list sending ``weights`` (subset -> percent) to reviews:80."""
    out = f"{indent}route:"
    for subset, weight in weights.items():
        out += f"""
{indent}- destination:
{indent}    host: {HOST}
{indent}    subset: {subset}
{indent}    port:
{indent}      number: 80
{indent}  weight: {weight}"""
    return out + "\n"


def virtual_service(weights: dict[str, int], matches: str = "") -> str:
    """A VirtualService: optional ``matches`` (pre-rendered http entries), then a split."""
    return f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: {NS}
spec:
  hosts:
  - {HOST}
  http:
{matches}  - name: default
{route(weights)}"""


@dataclass
class Sidecar:
    """An Envoy with a sidecar identity; send requests to 127.0.0.1:``outbound_port``."""

    envoy: EnvoyProcess
    node_id: str
    outbound_port: int
    inbound_port: int


class Mesh:
    """The reviews scenario (see harness/mesh.py) wired to a real control plane."""

    def __init__(
        self,
        config: ConfigDir,
        backend_factory: Callable[[str], Backend],
        envoy_factory: Callable[..., EnvoyProcess],
        control_plane_factory: Callable[..., ControlPlane],
    ) -> None:
        self.config = config
        self.envoy_factory = envoy_factory
        self._cp_factory = control_plane_factory
        self.backends = {v: backend_factory(v) for v in ("v1", "v2", "v3")}
        self.sidecars: list[Sidecar] = []
        self.cp: ControlPlane | None = None

    def start(
        self,
        *,
        weights: dict[str, int] | None = None,
        subsets: tuple[str, ...] = ("v1", "v2"),
        test_hooks: bool = False,
        routing_file: str | None = None,
    ) -> ControlPlane:
        """Write SE (all three backends), DR and VS, then start the control plane.

        With ``routing_file`` the DR and VS go into that one multi-document file, so a later
        write of it changes both in one step.
        """
        self.config.write(SE_FILE, service_entry(self.backends))
        dr = destination_rule(*subsets)
        vs = virtual_service(weights or {"v1": 100})
        if routing_file:
            self.config.write(routing_file, f"{dr}---\n{vs}")
        else:
            self.config.write(DR_FILE, dr)
            self.config.write(VS_FILE, vs)
        self.cp = self._cp_factory(self.config, test_hooks=test_hooks)
        return self.cp

    def sidecar(self, name: str = "productpage", api_type: ApiType = "GRPC") -> Sidecar:
        """Start an Envoy with a sidecar identity, fed by this mesh's control plane."""
        assert self.cp is not None
        outbound, inbound = free_port(), free_port()
        node_id, metadata = sidecar_node(name, outbound_port=outbound, inbound_port=inbound)
        bootstrap = sidecar_bootstrap(
            node_id, metadata, self.cp.xds_port, free_port(), api_type=api_type
        )
        envoy = self.envoy_factory(bootstrap, name=f"{name}-{api_type.lower()}")
        sidecar = Sidecar(envoy, node_id, outbound, inbound)
        self.sidecars.append(sidecar)
        return sidecar

    def synced(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        assert self.cp is not None
        return wait_synced(self.cp, len(self.sidecars), timeout)

    def wait_routes(
        self,
        sidecar: Sidecar,
        expected: set[str],
        *,
        path: str = "/",
        headers: dict[str, str] | None = None,
        host: str = HOST,
        timeout: float = 10.0,
    ) -> None:
        """Wait until 20 requests in a row all answer 200 from backends in ``expected``."""
        last: list[object] = [None]

        def probe() -> bool:
            counts = fire(sidecar.outbound_port, host, 20, path, headers=headers)
            last[0] = counts
            seen = {k for k in counts if ":" not in k}
            return counts["status:200"] == 20 and seen <= expected and bool(seen)

        wait_until(
            probe,
            timeout,
            interval=0.1,
            what=f"{host}{path} {headers or ''} to reach only {sorted(expected)}",
            describe=lambda: f"last answers: {last[0]}\n{sidecar.envoy.describe()}",
        )
