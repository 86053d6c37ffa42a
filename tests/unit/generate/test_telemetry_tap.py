"""The idle tap filter: first in every HCM of a proxy that announces its admin port, absent
otherwise, and accepted by Envoy (`--mode validate`, with the admin the filter needs)."""

from __future__ import annotations

from pathlib import Path

from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.http.tap.v3 import tap_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from property.envoyboot import bootstrap, validate
from shoal.api import ConfigStore
from shoal.generate import ConfigGenerator
from shoal.generate.prepared import LISTENER, unpack
from shoal.generate.telemetry_tap import INBOUND_TAP, OUTBOUND_TAP, TAP_FILTER
from shoal.model import Proxy, build_snapshot

from .meshcfg import sidecar

SECURE = {"INBOUND_PORT": "15006", "APP_PORT": "8080", "SECURE": "true"}


def _gen() -> ConfigGenerator:
    result = ConfigStore().update({})
    return ConfigGenerator(build_snapshot("t.1", result.resources))


def _chains(gen: ConfigGenerator, proxy: Proxy) -> dict[str, list[hcm_pb2.HttpFilter]]:
    """(listener/chain) -> its HCM's filters."""
    out = {}
    for name, res in gen.view(proxy).of(LISTENER).items():
        listener = unpack(res, listener_pb2.Listener())
        assert isinstance(listener, listener_pb2.Listener)
        for chain in listener.filter_chains:
            hcm = hcm_pb2.HttpConnectionManager()
            chain.filters[0].typed_config.Unpack(hcm)
            out[f"{name}/{chain.name}"] = list(hcm.http_filters)
    return out


def test_first_in_every_chain_of_a_proxy_with_an_admin_port() -> None:
    chains = _chains(_gen(), sidecar(name="web", ADMIN_PORT="15000", **SECURE))
    assert set(chains) == {
        "outbound_http/",
        "inbound_http/inbound_mtls",
        "inbound_http/inbound_plaintext",
    }
    for name, filters in chains.items():
        assert [f.name for f in filters].count(TAP_FILTER) == 1, name
        config = tap_pb2.Tap()
        filters[0].typed_config.Unpack(config)
        expected = OUTBOUND_TAP if name.startswith("outbound") else INBOUND_TAP
        assert config.common_config.admin_config.config_id == expected
        assert config.record_headers_received_time and config.record_downstream_connection


def test_absent_without_an_admin_port() -> None:
    chains = _chains(_gen(), sidecar(name="web", **SECURE))
    assert chains and all(TAP_FILTER not in [f.name for f in fs] for fs in chains.values())


def test_envoy_accepts_it_beside_an_admin(tmp_path: Path) -> None:
    gen = _gen()
    proxy = sidecar(name="web", ADMIN_PORT="15000", INBOUND_PORT="15006", APP_PORT="8080")
    boot = bootstrap(gen, proxy)
    boot.admin.address.socket_address.address = "127.0.0.1"
    boot.admin.address.socket_address.port_value = 0
    ok, output = validate(boot, tmp_path)
    assert ok, output
