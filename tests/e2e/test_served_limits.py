"""What validation now accepts near Envoy's limits is served by real Envoys from every bootstrap.

`/users/[a-z0-9-]{1,64}/orders` compiles to an RE2 program of 273, over Envoy's default limit
of 100: an Envoy whose bootstrap does not raise it NACKs the route table. shoal accepts it
because every bootstrap it writes raises the limit (as Istio does); this test runs an Envoy
from each of them (the harness's, the agent's, `examples/bootstrap/sidecar-none.yaml`) and
sends requests through the regex route, along with the longest timeout validation allows and
a `%%` header value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.load import fire
from harness.mesh import HOST, VS_FILE, Mesh, Sidecar, route, virtual_service
from harness.ports import free_port
from shoal.agent.bootstrap import SidecarIdentity, sidecar_bootstrap
from shoal.api.duration import MAX_SECONDS

pytestmark = pytest.mark.envoy

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "bootstrap" / "sidecar-none.yaml"

RULES = f"""  - name: users
    match:
    - uri:
        regex: /users/[a-z0-9-]{{1,64}}/orders
    timeout: {MAX_SECONDS}s
    headers:
      response:
        set: {{x-share: 100%%}}
{route({"v2": 100})}"""


def _example_bootstrap(xds_port: int, outbound: int, inbound: int) -> dict[str, Any]:
    boot: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    boot["admin"]["address"]["socket_address"]["port_value"] = free_port()
    boot["node"]["metadata"] |= {"OUTBOUND_PORT": str(outbound), "INBOUND_PORT": str(inbound)}
    (cluster,) = boot["static_resources"]["clusters"]
    (endpoint,) = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    endpoint["endpoint"]["address"]["socket_address"]["port_value"] = xds_port
    return boot


def _agent_bootstrap(xds_port: int, outbound: int, inbound: int) -> dict[str, Any]:
    ident = SidecarIdentity(
        name="agent-0", workload="agent", outbound_port=outbound, inbound_port=inbound
    )
    boot = sidecar_bootstrap(ident, xds_host="127.0.0.1", xds_port=xds_port, admin_port=free_port())
    return json.loads(json.dumps(boot))  # plain data, as the agent writes it


def test_regex_over_envoys_default_limit_is_served_by_every_bootstrap(mesh: Mesh) -> None:
    cp = mesh.start(subsets=("v1", "v2"))
    sidecars = [mesh.sidecar("harness")]
    for name, make in (("agent", _agent_bootstrap), ("example", _example_bootstrap)):
        outbound, inbound = free_port(), free_port()
        envoy = mesh.envoy_factory(make(cp.xds_port, outbound, inbound), name=name)
        sidecars.append(Sidecar(envoy, "", outbound, inbound))
    for sidecar in sidecars:
        mesh.wait_routes(sidecar, {"v1"})

    mesh.config.write(VS_FILE, virtual_service({"v1": 100}, matches=RULES))
    for sidecar in sidecars:
        mesh.wait_routes(sidecar, {"v2"}, path="/users/ab-12/orders")
        # a path the regex does not match falls through to the default route
        assert fire(sidecar.outbound_port, HOST, 5, "/users/AB/orders") == {
            "status:200": 5,
            "v1": 5,
        }
