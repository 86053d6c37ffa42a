"""One service, its replicas and a DestinationRule that a test swaps while Envoy runs.

``DrMesh`` writes a STATIC ServiceEntry for ``reviews`` with one endpoint per named port,
starts a control plane and one sidecar, and ``apply`` replaces the DestinationRule and waits
until the sidecar has ACKed the new clusters. A behavioural test therefore measures its
baseline and the policy through the same Envoy, seconds apart.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from typing import Any

from harness.configdir import ConfigDir
from harness.controlplane import ControlPlane, is_synced
from harness.mesh import HOST, NS, Mesh, Sidecar
from harness.wait import wait_until

CLUSTER = f"outbound|80||{HOST}"


def service_entry(ports: Mapping[str, int]) -> str:
    endpoints = "".join(
        f"\n  - address: 127.0.0.1\n    ports: {{http: {port}}}\n    labels: {{replica: {name}}}"
        for name, port in sorted(ports.items())
    )
    return f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: reviews, namespace: {NS}}}
spec:
  hosts: [{HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints:{endpoints}
"""


def destination_rule(spec: str) -> str:
    """A DestinationRule for reviews; ``spec`` is YAML for the fields below ``host``."""
    return f"""apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews, namespace: {NS}}}
spec:
  host: {HOST}
{textwrap.indent(textwrap.dedent(spec).strip(), "  ")}
"""


class DrMesh:
    def __init__(self, mesh: Mesh, control_plane_factory: Callable[..., ControlPlane]) -> None:
        self.mesh = mesh
        self.config: ConfigDir = mesh.config
        self._cp_factory = control_plane_factory
        self.sidecar: Sidecar | None = None

    def start(self, ports: Mapping[str, int], spec: str | None = None) -> Sidecar:
        self.config.write("reviews-se.yaml", service_entry(ports))
        if spec is not None:
            self.config.write("reviews-dr.yaml", destination_rule(spec))
        self.mesh.cp = self._cp_factory(self.config)
        self.sidecar = self.mesh.sidecar()
        self.mesh.synced()
        return self.sidecar

    @property
    def port(self) -> int:
        assert self.sidecar is not None
        return self.sidecar.outbound_port

    def _cds_acked(self) -> Any:
        assert self.mesh.cp is not None
        syncz = self.mesh.cp.syncz()
        return syncz[0]["types"].get("cds", {}).get("acked") if syncz else None

    def apply(self, spec: str) -> None:
        """Replace the DestinationRule; return once the sidecar ACKed the changed clusters."""
        assert self.mesh.cp is not None
        before = self._cds_acked()
        self.config.write("reviews-dr.yaml", destination_rule(spec))
        cp = self.mesh.cp
        wait_until(
            lambda: self._cds_acked() not in (None, before) and is_synced(cp.syncz(), 1),
            10,
            what="the new DestinationRule to reach the sidecar",
            describe=cp.describe,
        )

    def stat(self, name: str) -> int:
        """A counter of the service's cluster, e.g. ``upstream_rq_retry``."""
        assert self.sidecar is not None
        return self.sidecar.envoy.stat(f"cluster.{CLUSTER}.{name}")
