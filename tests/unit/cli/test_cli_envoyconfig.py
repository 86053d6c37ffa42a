"""Rows of `shoal proxy-config` from a config dump captured from a real Envoy fed by shoal.

fixtures/config_dump.json and fixtures/clusters.json come from a sidecar of the e2e mesh
(reviews v1/v2/v3, a VirtualService with header, prefix, exact and regex matches and an
80/20 split, APP_PORT 9080), trimmed of the bootstrap's long extension list.
"""

from __future__ import annotations

import copy
import io
from typing import Any

import pytest

from shoal.cli import envoyconfig as ec
from shoal.cli.tables import render_table

from .fakes import fixture

HOST = "reviews.default.svc.cluster.local"


@pytest.fixture(scope="module")
def dump() -> Any:
    return fixture("config_dump.json")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (f"outbound|80|v1|{HOST}", ec.ClusterName("outbound", 80, "v1", HOST)),
        (f"outbound|80||{HOST}", ec.ClusterName("outbound", 80, "", HOST)),
        ("inbound|9080||", ec.ClusterName("inbound", 9080, "", "")),
        ("xds-grpc", None),
        ("outbound|http|v1|x", None),
        ("BlackHoleCluster", None),
    ],
)
def test_parse_cluster_name(name: str, expected: ec.ClusterName | None) -> None:
    assert ec.parse_cluster_name(name) == expected


def test_cluster_rows(dump: Any) -> None:
    assert ec.cluster_rows(dump) == [
        ["-", "9080", "-", "inbound", "STATIC"],
        [HOST, "80", "-", "outbound", "EDS"],
        [HOST, "80", "v1", "outbound", "EDS"],
        [HOST, "80", "v2", "outbound", "EDS"],
        [HOST, "80", "v3", "outbound", "EDS"],
        ["xds-grpc", "-", "-", "-", "STATIC"],
    ]


def test_cluster_type_defaults_to_static() -> None:
    # proto3 JSON leaves out default values: a STATIC cluster has no "type" at all.
    assert ec.cluster_type({"name": "x"}) == "STATIC"
    assert ec.cluster_type({"cluster_type": {"name": "envoy.clusters.aggregate"}}) == (
        "envoy.clusters.aggregate"
    )


def test_listener_rows(dump: Any) -> None:
    rows = ec.listener_rows(dump)
    assert [r[0] for r in rows] == ["inbound_http", "outbound_http"]
    assert [r[1] for r in rows] == ["127.0.0.1", "127.0.0.1"]
    assert all(r[2].isdigit() for r in rows)
    assert [r[3:] for r in rows] == [
        ["HTTP", "Route: inbound (inline)"],
        ["HTTP", "Route: outbound_http"],
    ]


def test_route_rows(dump: Any) -> None:
    domains = f"{HOST}, reviews +2 more"
    assert ec.route_rows(dump) == [
        ["inbound", "*", "/*", "-", "inbound|9080||"],
        ["outbound_http", domains, "/* && end-user=jason", "jason", f"outbound|80|v2|{HOST}"],
        ["outbound_http", domains, "/api/v3/*", "prefix", f"outbound|80|v3|{HOST}"],
        ["outbound_http", domains, "/exact", "exact", f"outbound|80|v2|{HOST}"],
        ["outbound_http", domains, "regex:/re/[0-9]+", "regex", f"outbound|80|v3|{HOST}"],
        [
            "outbound_http",
            domains,
            "/*",
            "default",
            f"outbound|80|v1|{HOST} 80%, outbound|80|v2|{HOST} 20%",
        ],
    ]


@pytest.mark.parametrize(
    ("domains", "expected"),
    [
        (["*"], "*"),
        (["a.b:80", "a.b", "a:80", "a"], "a.b, a"),
        (["a.b.c", "a.b", "a", "10.0.0.1:8080"], "10.0.0.1:8080, a +2 more"),
    ],
)
def test_summarize_domains(domains: list[str], expected: str) -> None:
    assert ec.summarize_domains(domains) == expected


def test_describe_match_variants() -> None:
    match = {
        "prefix": "/api",
        "headers": [
            {"name": "x-a", "string_match": {"prefix": "p"}},
            {"name": "x-b", "string_match": {"safe_regex": {"regex": "b+"}}},
            {"name": "x-c", "present_match": True, "invert_match": True},
        ],
        "query_parameters": [{"name": "v", "string_match": {"exact": "2"}}],
    }
    assert ec.describe_match(match) == "/api* && x-a^=p && x-b~=b+ && !x-c && ?v=2"


def test_endpoint_rows() -> None:
    clusters = fixture("clusters.json")
    rows = ec.endpoint_rows(clusters)
    by_cluster = {r[3]: r for r in rows if r[3] != f"outbound|80||{HOST}"}
    assert by_cluster["inbound|9080||"] == ["127.0.0.1:9080", "HEALTHY", "OK", "inbound|9080||"]
    assert {r[1] for r in rows} == {"HEALTHY"}
    assert len([r for r in rows if r[3] == f"outbound|80||{HOST}"]) == 3


def test_endpoint_failing_outlier_check_is_unhealthy() -> None:
    clusters = copy.deepcopy(fixture("clusters.json"))
    status = next(c for c in clusters["cluster_statuses"] if c["name"] == f"outbound|80|v1|{HOST}")
    status["host_statuses"][0]["health_status"]["failed_outlier_check"] = True
    row = next(r for r in ec.endpoint_rows(clusters) if r[3] == f"outbound|80|v1|{HOST}")
    assert row[1:3] == ["UNHEALTHY", "FAILED"]


def test_rendered_table_is_plain_text(dump: Any) -> None:
    out = io.StringIO()
    render_table(ec.ROUTE_COLUMNS, ec.route_rows(dump), file=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split("  ")[0] == "ROUTE NAME"
    # Markup-looking text (the regex) is printed as is, lines are not wrapped at 80 columns
    # and carry no trailing padding.
    assert any("regex:/re/[0-9]+" in line for line in lines)
    assert len(lines) == 1 + 6
    assert all(line == line.rstrip() for line in lines)
    assert max(map(len, lines)) > 80


def test_a_destination_held_back_for_want_of_endpoints_says_so() -> None:
    route = {
        "route": {
            "weighted_clusters": {
                "clusters": [
                    {"name": "outbound|80|v1|web.default.svc.cluster.local", "weight": 90},
                    {"name": "outbound|80|v2|web.default.svc.cluster.local", "weight": 0},
                ]
            }
        }
    }
    assert ec.describe_action(route) == (
        "outbound|80|v1|web.default.svc.cluster.local 90%, "
        "outbound|80|v2|web.default.svc.cluster.local 0% (no endpoints yet)"
    )
