"""Values Envoy would refuse, or that would break requests, are load errors with their field.

Each case of issue 11 is here (a regex RE2 refuses, one over Envoy's default program size, a
timeout outside protobuf Duration's range, CR LF in a header value, a space in a header name,
`:path` set as a header), with the neighbours the same rules cover.
"""

from __future__ import annotations

import pytest

from shoal.api import ConfigStore
from shoal.api.errors import ConfigError
from shoal.api.re2 import REGEX_PROGRAM_SIZE_LIMIT, program_size

SE = """apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http}]
  endpoints: [{address: 127.0.0.1}]
"""
VS = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}]
"""
DR = """apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy:
"""


_ACTIONS = ("route:", "redirect:", "directResponse:")


def _errors(rule: str, base: str = VS) -> list[ConfigError]:
    """Errors of `base` with `rule` (YAML at the http entry's indentation) added; a rule that
    is an action (route, redirect, directResponse) replaces the route."""
    if rule.startswith(_ACTIONS):
        text = base.replace("  - route: [{destination: {host: reviews}}]\n", f"  - {rule}\n")
    else:
        text = base + f"    {rule}\n"
    return ConfigStore().update({"se.yaml": SE, "vs.yaml": text}).errors


def _one(rule: str, base: str = VS) -> ConfigError:
    errors = _errors(rule, base)
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


def test_regex_refused_by_re2_itself() -> None:
    error = _one("match: [{uri: {regex: 'a{1001}'}}]")
    assert (error.file, error.line) == ("vs.yaml", 8)
    assert error.field == "spec.http[0].match[0].uri.regex"
    assert "invalid repetition size" in error.message


def test_ordinary_regex_over_envoys_default_limit_is_accepted() -> None:
    # 273 > Envoy's default of 100; shoal's bootstraps raise the limit (see the e2e test)
    assert program_size("/users/[a-z0-9-]{1,64}/orders") == 273
    assert not _errors("match: [{uri: {regex: '/users/[a-z0-9-]{1,64}/orders'}}]")


def test_regex_over_the_bootstrap_limit_is_refused() -> None:
    error = _one("match: [{uri: {regex: '" + "a{1000}" * 33 + "'}}]")
    assert f"over the limit of {REGEX_PROGRAM_SIZE_LIMIT}" in error.message
    assert "re2.max_program_size.error_level" in error.message


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ("match: [{headers: {x-a: {regex: '(?=x)'}}}]", "spec.http[0].match[0].headers.x-a.regex"),
        ("match: [{uri: {regex: ''}}]", "spec.http[0].match[0].uri.regex"),
        (
            "rewrite: {uriRegexRewrite: {match: '/(a)', rewrite: '/\\2'}}",
            "spec.http[0].rewrite.uriRegexRewrite.rewrite",
        ),
        (
            "corsPolicy: {allowOrigins: [{regex: 'a**'}]}",
            "spec.http[0].corsPolicy.allowOrigins[0].regex",
        ),
    ],
)
def test_other_regex_fields(rule: str, field: str) -> None:
    assert _one(rule).field == field


def test_timeout_outside_the_duration_range() -> None:
    error = _one("timeout: 1000000000000s")
    assert error.field == "spec.http[0].timeout"
    assert "too long" in error.message
    assert not _errors("timeout: 9223372035s")
    assert _one("timeout: 9223372036s").field == "spec.http[0].timeout"


def test_header_value_with_cr_lf() -> None:
    error = _one('headers: {request: {set: {x-a: "ok\\r\\nx-injected: 1"}}}')
    assert error.field == "spec.http[0].headers.request.set.x-a"
    assert "'\\r'" in error.message


def test_header_name_with_a_space() -> None:
    error = _one("headers: {request: {set: {'x a': b}}}")
    assert error.field == 'spec.http[0].headers.request.set["x a"]'
    assert "not an HTTP token" in error.message


def test_path_set_as_a_header() -> None:
    error = _one("headers: {request: {set: {':path': /other}}}")
    assert error.field == 'spec.http[0].headers.request.set[":path"]'
    assert "rewrite.uri" in error.message


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ("headers: {request: {add: {':method': POST}}}", "pseudo-headers"),
        ("headers: {request: {remove: [host]}}", "cannot be removed"),
        ("headers: {request: {remove: [':authority']}}", "cannot be removed"),
        ("headers: {response: {set: {host: a}}}", "request header"),
        ("headers: {request: {set: {host: 'a b'}}}", "authority"),
        ("headers: {request: {set: {content-length: '5'}}}", "frames"),
        ("headers: {request: {set: {x-a: '50%'}}}", "write '%%'"),
        ("headers: {request: {set: {x-a: '%FOO%'}}}", "variable"),
        ("headers: {request: {set: {x-a: '%HOSTNAME:3%'}}}", "variable"),
        ('headers: {response: {set: {x-a: "a\\0"}}}', "NUL"),
        ('headers: {response: {set: {x-a: "a\\x01"}}}', "control character"),
        ("route: [{destination: {host: reviews}, headers: {request: {set: {'x:y': a}}}}]", "token"),
        ("match: [{headers: {'bad name': {exact: a}}}]", "token"),
        ("match: [{headers: {':nope': {exact: a}}}]", "pseudo-header"),
        ("match: [{queryParams: {'': {exact: a}}}]", "1 to 1024"),
        ("match: [{headers: {x-a: {prefix: ''}}}]", "prefix must not be empty"),
        ("corsPolicy: {allowOrigins: [{prefix: ''}]}", "prefix must not be empty"),
        ("corsPolicy: {allowMethods: ['GET POST']}", "HTTP method"),
        ("corsPolicy: {allowHeaders: ['x-a, x-b']}", "token"),
        ("retries: {attempts: 4294967296}", "less than or equal"),
        ("rewrite: {uri: 'v2'}", "must start with '/'"),
        ("rewrite: {uri: '/a b'}", "URI path characters"),
        ("rewrite: {authority: 'a/b'}", "authority"),
        ("redirect: {uri: '/x#frag'}", "URI path characters"),
        ("redirect: {scheme: 'ht tp'}", "scheme"),
        ("redirect: {authority: 'a:70000'}", "authority"),
        ("directResponse: {status: 200, body: {string: " + "x" * 4097 + "}}", "4096"),
        ("fault: {abort: {httpStatus: 503, percentage: {value: .nan}}}", "100"),
    ],
)
def test_refused_with_a_reason(rule: str, words: str) -> None:
    error = _one(rule)
    assert words in error.message, str(error)
    assert error.field.startswith("spec.http[0]"), str(error)


@pytest.mark.parametrize(
    "rule",
    [
        "headers: {request: {set: {x-a: '100%%', x-b: '%DOWNSTREAM_REMOTE_ADDRESS%'}}}",
        "headers: {request: {set: {x-a: '%REQ(x-b?x-c):10%', ':authority': 'a.example:8080'}}}",
        "headers: {request: {set: {x-a: 'caf\u00e9 \t tab'}, remove: [x-b]}}",
        "match: [{headers: {':method': {exact: GET}}, queryParams: {q: {prefix: a}}}]",
        "rewrite: {uri: '/v2/', authority: 'new.example'}",
        "redirect: {uri: '/x?a=b', scheme: https, authority: 'h.example:8443'}",
        "corsPolicy: {allowMethods: [GET], allowHeaders: ['*', x-a], exposeHeaders: [x-b]}",
    ],
)
def test_ordinary_values_stay_accepted(rule: str) -> None:
    assert not _errors(rule)


@pytest.mark.parametrize(
    ("policy", "field", "words"),
    [
        (
            "loadBalancer: {consistentHash: {httpCookie: {name: 'a b'}}}",
            "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name",
            "cookie name",
        ),
        (
            "loadBalancer: {consistentHash: {httpCookie: {name: s, path: '/a;b'}}}",
            "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.path",
            "cookie",
        ),
        (
            "loadBalancer: {consistentHash: {httpHeaderName: 'x y'}}",
            "spec.trafficPolicy.loadBalancer.consistentHash.httpHeaderName",
            "token",
        ),
        (
            "loadBalancer: {consistentHash: {ringHash: {minimumRingSize: 8388609}}}",
            "spec.trafficPolicy.loadBalancer.consistentHash.ringHash.minimumRingSize",
            "less than or equal",
        ),
        (
            "connectionPool: {tcp: {tcpKeepalive: {time: 500ms}}}",
            "spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.time",
            "between 1s",
        ),
        (
            "outlierDetection: {consecutive5xxErrors: 4294967296}",
            "spec.trafficPolicy.outlierDetection.consecutive5xxErrors",
            "less than or equal",
        ),
        ("tls: {mode: SIMPLE, sni: 'a b'}", "spec.trafficPolicy.tls.sni", "DNS name"),
    ],
)
def test_destination_rule_fields(policy: str, field: str, words: str) -> None:
    text = DR + f"    {policy}\n"
    errors = ConfigStore().update({"se.yaml": SE, "dr.yaml": text}).errors
    assert [(e.field, words in e.message) for e in errors] == [(field, True)], [
        str(e) for e in errors
    ]


@pytest.mark.parametrize(
    "host",
    ["Reviews.example.com", "a_b.example.com", "-a.example.com", "a.example.com.", "x" * 64],
)
def test_hosts_must_be_dns_names(host: str) -> None:
    text = SE.replace("reviews.default.svc.cluster.local", host)
    (error,) = ConfigStore().update({"se.yaml": text}).errors
    assert error.field == "spec.hosts[0]"


def test_subset_names_are_dns_labels() -> None:
    text = DR.replace("  trafficPolicy:\n", "  subsets: [{name: 'v1|x', labels: {a: b}}]\n")
    (error,) = ConfigStore().update({"se.yaml": SE, "dr.yaml": text}).errors
    assert error.field == "spec.subsets[0].name"


def test_strings_no_envoy_field_can_hold() -> None:
    # YAML cannot spell a lone surrogate, but a dict handed to the store's parser can hold NUL
    errors = _errors('headers: {request: {set: {"x-a": "\\0"}}}')
    assert [(e.field, "NUL" in e.message) for e in errors] == [
        ("spec.http[0].headers.request.set.x-a", True)
    ]
