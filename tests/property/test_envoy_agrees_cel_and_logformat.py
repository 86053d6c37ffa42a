"""What shoal's CEL and access-log format checks accept, Envoy accepts; what they refuse is said.

The checks (api/cel.py, api/logformat.py) are shoal's reading of Envoy's parsers. Here every
command of the access-log list, with and without the arguments and lengths it allows, goes
into one MeshConfig format, and a range of CEL expressions into one Telemetry's tag overrides:
shoal accepts them all, and `envoy --mode validate` accepts the sidecar config made of them.
Malformed ones (found by the whole-type property test, or Envoy's own error cases) are refused
by shoal with the place of the error.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml

from shoal.api import ConfigStore
from shoal.api.cel import check_cel
from shoal.api.logformat import NO_ARGUMENTS, OPTIONAL_ARGUMENT, REQUIRED_ARGUMENT, check_log_format
from shoal.generate import ConfigGenerator
from shoal.model import build_snapshot

from .envoyboot import bootstrap, secure_sidecar, validate

pytestmark = pytest.mark.envoy

ARGUMENTS = {
    "REQ": "x-a?x-b",
    "RESP": ":status",
    "TRAILER": "grpc-status",
    "DYNAMIC_METADATA": "ns:key",
    "UPSTREAM_METADATA": "ns:key",
    "CLUSTER_METADATA": "ns:key",
    "FILTER_STATE": "key:PLAIN",
    "UPSTREAM_FILTER_STATE": "key",
    "ENVIRONMENT": "HOME",
    "CEL": "request.headers['x-a']",
    "METADATA": "ROUTE:ns:key",
    "QUERY_PARAM": "q",
}
OPTIONAL = {"START_TIME": "%s.%3f", "GRPC_STATUS": "CAMEL_STRING", "PATH": "WQ"}

VALID_CEL = [
    "request.host",
    "request.headers['x-a']",
    "int(response.code) + 1",
    "size('a') + 'a'.size()",
    "request.path.startsWith('/a') || request.path.endsWith('b') || request.path.contains('c')",
    "request.path.matches('^/a') && bool(1) == true",
    "timestamp('2020-01-01T00:00:00Z') < request.time && duration('1s') == duration('1s')",
    "request.time.getHours() + request.time.getMinutes() + request.time.getSeconds()",
    "request.time.getMilliseconds() + request.time.getDate() + request.time.getDayOfMonth()",
    "request.time.getDayOfWeek() + request.time.getDayOfYear() + request.time.getFullYear()",
    "request.time.getMonth() + uint(1) + double(1) + dyn(1)",
    "type(1) == type(2) && bytes('a') == b'a'",
    "[1, 2,] == [1, 2] && {'a': 1,}['a'] == 1",
    "'literal'",
    '"double" + "quoted"',
    "request.size > 1024u ? 'big' : 'small'",
    "response.code in [200, 201, 204]",
    "has(request.headers.x) && !(1 == 2) || null == null",
    "{'a': 1, 'b': [1.5, -2e3, 0x1F]}['a']",
    "b'\\x00\\377' == b'\\000'",
    "r'\\d+' + '\\n\\t\\u00e9'",
    "size(request.path) - 1 * 3 / 1",
    "xds.route_name",
]
INVALID_CEL = [
    "a b",
    "",
    "a +",
    "(a",
    "if",
    "in",
    "'\\q'",
    "[1, 2",
    "a..b",
    "a ? b",
    "1 == = 2",
    # Envoy 1.40 refuses these when it builds the expression (each checked with it)
    "string(response.code)",
    "nosuchfn(1)",
    "x.nosuchmethod()",
    "'a'.lowerAscii()",
    "[1].exists(x, x > 0)",
    "[1].map(x, x + 1)",
    "size(1, 2,)",
    "has(x)",
    "x{a: 1}",
]


def test_everything_the_checks_accept_envoy_accepts() -> None:
    commands = [f"%{c}%" for c in sorted(NO_ARGUMENTS | OPTIONAL_ARGUMENT)]
    commands += [f"%{c}({a})%" for c, a in sorted(OPTIONAL.items())]
    commands += [f"%{c}({ARGUMENTS[c]})%" for c in sorted(REQUIRED_ARGUMENT)]
    commands += [f"%{c}({ARGUMENTS[c]}):7%" for c, length in REQUIRED_ARGUMENT.items() if length]
    assert set(ARGUMENTS) == set(REQUIRED_ARGUMENT)
    log_format = "100%% " + " ".join(commands) + " é\n"
    docs = [
        {
            "apiVersion": "shoal.dev/v1alpha1",
            "kind": "MeshConfig",
            "metadata": {"name": "mesh", "namespace": "default"},
            "spec": {"accessLogFile": "/dev/stdout", "accessLogFormat": log_format},
        },
        {
            "apiVersion": "telemetry.istio.io/v1",
            "kind": "Telemetry",
            "metadata": {"name": "tags", "namespace": "default"},
            "spec": {
                "metrics": [
                    {
                        "overrides": [
                            {"tagOverrides": {f"tag_{i}": {"value": v}}}
                            for i, v in enumerate(VALID_CEL)
                        ]
                    }
                ]
            },
        },
    ]
    result = ConfigStore().update({"f.yaml": yaml.safe_dump_all(docs)})
    assert not result.errors, [str(e) for e in result.errors]
    gen = ConfigGenerator(build_snapshot("t.1", result.resources))
    with tempfile.TemporaryDirectory() as tmp:
        ok, output = validate(bootstrap(gen, secure_sidecar()), Path(tmp))
    assert ok, output


@pytest.mark.parametrize("expression", INVALID_CEL)
def test_malformed_cel_is_refused(expression: str) -> None:
    with pytest.raises(ValueError, match="CEL"):
        check_cel(expression)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("%FOO%", "FOO is not an Envoy access-log command"),
        ("100% ok", "'%' at 3 starts no command"),
        ("%", "'%' at 0"),
        ("%RESPONSE_CODE:3%", "takes no argument or length"),
        ("%DURATION(x)%", "takes no argument or length"),
        ("%REQ()%", "needs an argument"),
        ("%REQ(a b)%", "not an HTTP token"),
        ("%CLUSTER_METADATA(ns:key):3%", "takes no length"),
        ("%GRPC_STATUS(WORDS)%", "takes one of"),
        ("%START_TIME:3%", "takes no length"),
        ("%CEL(a b)%", "CEL 'a b'"),
        ("%CEL(string(x))%", "starts no command"),
    ],
)
def test_malformed_log_formats_are_refused(text: str, why: str) -> None:
    with pytest.raises(ValueError) as err:
        check_log_format(text)
    assert why in str(err.value), err.value
