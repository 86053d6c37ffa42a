"""An Envoy whose bootstrap a user wrote by hand gets working outbound routing from shoal.

The bootstrap below is deliberately not built by the harness: it carries only the node id and
the three metadata keys a NONE-mode sidecar cannot do without. No NAMESPACE, LABELS or
SERVICE_ACCOUNT: shoal must take the namespace from the node id. It also leaves
``set_node_on_first_message_only`` at its default (node sent on every request).
"""

from __future__ import annotations

from string import Template

import pytest

from harness.load import fire
from harness.mesh import HOST, Mesh, Sidecar
from harness.ports import free_port

pytestmark = pytest.mark.envoy

NODE_ID = "sidecar~127.0.0.1~ratings-5d8f9c.default~default.svc.cluster.local"
BOOTSTRAP = Template("""\
node:
  id: sidecar~127.0.0.1~ratings-5d8f9c.default~default.svc.cluster.local
  cluster: ratings
  metadata:
    INTERCEPTION_MODE: NONE
    OUTBOUND_PORT: "$outbound"
    INBOUND_PORT: "$inbound"
admin:
  address:
    socket_address: { address: 127.0.0.1, port_value: $admin }
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    grpc_services:
    - envoy_grpc: { cluster_name: xds-grpc }
  cds_config: { ads: {}, resource_api_version: V3 }
  lds_config: { ads: {}, resource_api_version: V3 }
static_resources:
  clusters:
  - name: xds-grpc
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: { http2_protocol_options: {} }
    load_assignment:
      cluster_name: xds-grpc
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: { address: 127.0.0.1, port_value: $xds }
""")


def test_hand_written_bootstrap_routes(mesh: Mesh) -> None:
    cp = mesh.start(weights={"v2": 100})
    outbound = free_port()
    bootstrap = BOOTSTRAP.substitute(
        outbound=outbound, inbound=free_port(), admin=free_port(), xds=cp.xds_port
    )
    envoy = mesh.envoy_factory(bootstrap, name="handwritten")
    sidecar = Sidecar(envoy, NODE_ID, outbound, 0)
    mesh.wait_routes(sidecar, {"v2"})

    # Full name, short name from the same namespace, and both with the port.
    for host in (HOST, "reviews", f"{HOST}:80", "reviews:80"):
        counts = fire(outbound, host, 20)
        assert counts == {"status:200": 20, "v2": 20}, (host, counts, envoy.describe())
    entry = cp.proxy(NODE_ID)
    assert entry is not None, cp.syncz()
    assert entry["types"]["lds"]["acked"] is not None, entry
