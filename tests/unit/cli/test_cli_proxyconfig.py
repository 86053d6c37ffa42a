"""`shoal proxy-config`: find the proxy in syncz, then read its Envoy's admin API."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shoal.cli.main import main
from shoal.cli.proxyconfig import ProxyNotFound, admin_address, find_proxy

from .fakes import fixture, json_server, syncz_entry

HOST = "reviews.default.svc.cluster.local"


def test_find_proxy_by_workload_qualified_name_or_node_id() -> None:
    syncz = [syncz_entry("productpage", "127.0.0.1:1"), syncz_entry("ratings", None)]
    node = syncz[0]["node"]
    for name in ("productpage", "productpage.default", node):
        assert find_proxy(syncz, name) is syncz[0]


def test_unknown_workload_lists_known_ones() -> None:
    syncz = [syncz_entry("productpage", None), syncz_entry("ratings", None, namespace="shop")]
    with pytest.raises(ProxyNotFound, match=r"known workloads: productpage.default, ratings.shop"):
        find_proxy(syncz, "reviews")


def test_ambiguous_workload_asks_for_node_id() -> None:
    syncz = [syncz_entry("web", None), syncz_entry("web", None, namespace="shop")]
    with pytest.raises(ProxyNotFound, match="names 2 proxies"):
        find_proxy(syncz, "web")


def test_missing_admin_explains_admin_port() -> None:
    with pytest.raises(ProxyNotFound, match="did not send ADMIN_PORT"):
        admin_address(syncz_entry("productpage", None))


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Serve syncz and the fixture Envoy admin API on one real HTTP server; run the CLI."""
    routes: dict[str, Any] = {
        "/config_dump": fixture("config_dump.json"),
        "/clusters?format=json": fixture("clusters.json"),
    }
    with json_server(routes) as address:
        routes["/debug/syncz"] = [syncz_entry("productpage", address), syncz_entry("bare", None)]
        code = main([*args, "--control-plane", address])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_clusters_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["proxy-config", "clusters", "productpage"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["SERVICE", "FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE"]
    assert [HOST, "80", "v1", "outbound", "EDS"] in [line.split() for line in lines]


@pytest.mark.parametrize(
    ("what", "expected"),
    [
        ("listeners", "outbound_http"),
        ("routes", "/* && end-user=jason"),
        ("endpoints", f"outbound|80|v3|{HOST}"),
    ],
)
def test_other_tables(what: str, expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["proxy-config", what, "productpage.default"], capsys)
    assert code == 0
    assert expected in out


@pytest.mark.parametrize(
    ("what", "key"),
    [
        ("clusters", "dynamic_active_clusters"),
        ("listeners", "dynamic_listeners"),
        ("routes", "dynamic_route_configs"),
        ("endpoints", "cluster_statuses"),
    ],
)
def test_json_is_the_relevant_raw_part(
    what: str, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(["proxy-config", what, "productpage", "-o", "json"], capsys)
    assert code == 0
    assert key in json.loads(out)


def test_unknown_workload_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["proxy-config", "clusters", "reviews"], capsys)
    assert (code, out) == (1, "")
    assert "known workloads: bare.default, productpage.default" in err


def test_proxy_without_admin_port_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["proxy-config", "routes", "bare"], capsys)
    assert code == 1
    assert "ADMIN_PORT" in err
