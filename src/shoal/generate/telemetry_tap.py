"""Envoy's HTTP tap filter in every proxy, idle until `shoal tap` or `shoal top` attaches.

Each HTTP connection manager gets `envoy.filters.http.tap` first in its chain (so it also
sees requests a later filter answers, e.g. an RBAC 403) with an *admin* config: it records
nothing until a client POSTs a tap request to that Envoy's admin API (`/tap`) naming the
filter's `config_id`, and stops when that client goes away. Until then a request costs one
thread-local lookup finding no tap config: nothing is buffered, formatted or sent. Chosen
over an access-log stream (ALS to the agent or control plane), which formats and sends every
request whether anybody watches or not, or needs a listener change (and drain) to switch.

The inbound side (`INBOUND_TAP`) sees requests a workload serves with the headers the HCM has
already set from the connection: `x-forwarded-client-cert` from the caller's verified
certificate (mTLS chain only) and the caller sidecar's `x-shoal-peer-*` claims (trusted there
only). The outbound side (`OUTBOUND_TAP`: sidecar outbound, gateways) sees requests a
workload sends. Envoy's admin API allows one attached tap stream at a time per Envoy.

Only proxies that announce their admin port (node metadata `ADMIN_PORT`, as `shoal agent`
does) get the filter: nobody could attach to the others, and Envoy 1.40 crashes (SIGSEGV, even
in `--mode validate`) on a tap filter with an admin config when its bootstrap has no admin.
"""

from __future__ import annotations

from envoy.extensions.filters.http.tap.v3 import tap_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from shoal.model import Proxy

TAP_FILTER = "envoy.filters.http.tap"
INBOUND_TAP = "shoal_inbound"
OUTBOUND_TAP = "shoal_outbound"


def tap_filter(config_id: str) -> hcm_pb2.HttpFilter:
    config = tap_pb2.Tap(record_headers_received_time=True, record_downstream_connection=True)
    config.common_config.admin_config.config_id = config_id
    out = hcm_pb2.HttpFilter(name=TAP_FILTER)
    out.typed_config.Pack(config)
    return out


def add_tap(hcm: hcm_pb2.HttpConnectionManager, proxy: Proxy, config_id: str) -> None:
    """First in the chain; once (the inbound mTLS chain starts as a copy of the plaintext one)."""
    if proxy.admin_port is None or any(f.name == TAP_FILTER for f in hcm.http_filters):
        return
    filters = list(hcm.http_filters)
    del hcm.http_filters[:]
    hcm.http_filters.extend([tap_filter(config_id), *filters])
