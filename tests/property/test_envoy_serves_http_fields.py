"""Property: the header, path and regex fields shoal accepts do in a real Envoy what they say.

`envoy --mode validate` proves Envoy takes the config; this proves a request goes through it.
Each example is a batch of cases, each case one service with one VirtualService route: a
`match` (uri exact/prefix/regex, header exact/prefix/regex on names and values drawn from all
of HTTP's grammar: any token characters, spaces, tabs and non-ASCII inside values), optionally
a `rewrite` (uri, uriRegexRewrite, authority) and `headers` set/add/remove on request and
response with such names and values (`%%`, `%REQ(..)%` and a downstream variable included).
Everything a batch generates runs in one real Envoy (envoyboot's bootstrap with STATIC
clusters, binary), in front of a loopback echo backend; for every case a request that matches
is sent, and the echo and the response must show exactly the effect the route describes. A
second route per service answers 404 when the first does not match, so a match that fails is
seen as such, not as a fall-through to the backend.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harness import procs
from harness.adminhttp import request
from harness.backend import Backend
from harness.ports import free_port
from harness.wait import wait_until
from shoal.agent.process import find_envoy
from shoal.api import ConfigStore
from shoal.generate import ConfigGenerator
from shoal.model import build_snapshot

from .envoyboot import bootstrap, sidecar

pytestmark = pytest.mark.envoy

TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Headers Envoy itself computes or strips on the way (hop-by-hop, forwarding, its own x-envoy-
# ones) and the ones the echo and this test use: a route setting them is not what is tested.
MANAGED = frozenset(
    {"te", "connection", "keep-alive", "proxy-connection", "upgrade", "transfer-encoding",
     "content-length", "host", "expect", "x-request-id", "x-forwarded-for", "x-forwarded-proto",
     "x-forwarded-host", "x-forwarded-port", "x-forwarded-client-cert", "date", "server",
     "content-type", "x-in", "via", "x-backend"}
)  # fmt: skip
RE2_SPECIAL = set("\\.+*?()|[]{}^$")
# unusual but valid value characters: visible ASCII, space and tab inside, obs-text (UTF-8)
_VALUE_CHARS = st.one_of(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="%"),
    st.sampled_from(["\t", "é", "€", "ü", "\u00a0"]),
)
IN_VALUE = "in-value"


def re2_escape(text: str) -> str:
    return "".join("\\" + c if c in RE2_SPECIAL else c for c in text)


def names() -> st.SearchStrategy[str]:
    return st.text(TCHAR, min_size=1, max_size=24).filter(
        lambda n: n.lower() not in MANAGED and not n.lower().startswith("x-envoy")
    )


def plain_values() -> st.SearchStrategy[str]:
    return st.text(_VALUE_CHARS, min_size=1, max_size=30).map(str.strip).filter(bool)


@st.composite
def header_value(draw: st.DrawFn) -> tuple[str, str]:
    """(value as configured, value Envoy's formatter makes of it)."""
    parts = draw(
        st.lists(
            st.one_of(
                plain_values().map(lambda v: (v, v)),
                st.just(("%%", "%")),
                st.just(("%REQ(x-in)%", IN_VALUE)),
                st.just(("%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", "127.0.0.1")),
            ),
            min_size=1,
            max_size=3,
        )
    )
    value, expanded = "".join(p[0] for p in parts), "".join(p[1] for p in parts)
    if value != value.strip() or not value:
        value = expanded = "v"
    return value, expanded


# paths as they are after Envoy's normalisation (normalize_path, merge_slashes): no empty or
# dot segments, no %-escapes; each segment any of RFC 3986's path characters
_SEGMENT = st.text("abcXYZ019-_~!$&'()*+,;=:@", min_size=1, max_size=8).filter(
    lambda s: s not in (".", "..")
)
PATHS = st.lists(_SEGMENT, min_size=1, max_size=3).map(lambda s: "/" + "/".join(s))

# (regex, a path it matches fully, a regex rewrite of it with its result)
REGEX_CASES = [
    ("/users/[a-z0-9-]{1,64}/orders", "/users/ab-12/orders"),
    ("/items/[0-9]+", "/items/42"),
    ("/a(b|c)?", "/ac"),
    ("/[[:alpha:]]+/x", "/Abc/x"),
    ("/v[0-9]/.*", "/v1/deep/er"),
]
REGEX_REWRITES = [
    ("^/([^/]+)/([^/]+)", "/\\2/\\1"),
    ("[0-9]", "N"),
    ("^/", "/prefixed/"),
]


@dataclass
class Case:
    """One service, one route, one request, and what must come out."""

    host: str
    route: dict[str, Any]
    path: str
    sent: list[tuple[str, str]] = field(default_factory=list)
    want_path: str = ""
    want_host: str = ""
    want_request: dict[str, list[str] | None] = field(default_factory=dict)  # None: absent
    want_response: dict[str, str | None] = field(default_factory=dict)

    def check(self, status: int, echo: dict[str, Any], response: dict[str, str]) -> list[str]:
        problems: list[str] = []
        if status != 200 or not isinstance(echo.get("header_list"), list):
            return [f"status {status}, {echo}"]
        got: dict[str, list[str]] = {}
        for name, value in echo["header_list"]:
            # http.server reads header bytes as Latin-1; they were UTF-8 on the wire
            got.setdefault(name, []).append(value.encode("latin-1").decode("utf-8"))
        if echo["path"] != self.want_path:
            problems.append(f"path {echo['path']!r}, want {self.want_path!r}")
        if self.want_host and got.get("host") != [self.want_host]:
            problems.append(f"host {got.get('host')}, want {self.want_host!r}")
        for name, want in self.want_request.items():
            if got.get(name.lower()) != want:
                problems.append(f"request header {name!r}: {got.get(name.lower())}, want {want}")
        for name, want_value in self.want_response.items():
            if response.get(name.lower()) != want_value:
                problems.append(
                    f"response header {name!r}: {response.get(name.lower())!r}, want {want_value!r}"
                )
        return problems


@st.composite
def uri_match(draw: st.DrawFn, case: Case) -> dict[str, Any] | None:
    kind = draw(st.sampled_from(["none", "exact", "prefix", "regex", "regex-made"]))
    if kind == "none":
        return None
    if kind == "regex":
        regex, case.path = draw(st.sampled_from(REGEX_CASES))
        return {"regex": regex}
    path = draw(PATHS)
    if kind == "exact":
        case.path = path
        return {"exact": path}
    rest = draw(st.sampled_from(["", "/more", "x", "/a/b"]))
    case.path = path + rest
    if kind == "prefix":
        return {"prefix": path}
    return {"regex": re2_escape(path) + ".*"}


@st.composite
def header_matches(draw: st.DrawFn, case: Case, taken: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for _ in range(draw(st.integers(0, 2))):
        name = draw(names())
        if name.lower() in taken:
            continue
        taken.add(name.lower())
        value = draw(plain_values() | st.text(TCHAR + "%", min_size=1, max_size=10))
        cut = draw(st.integers(1, len(value)))
        head = value[:cut]
        regex = re2_escape(head) + ".*"
        out[name] = draw(st.sampled_from([{"exact": value}, {"prefix": head}, {"regex": regex}]))
        case.sent.append((name, value))
    if draw(st.booleans()):
        out[":method"] = {"exact": "GET"}
    return out


@st.composite
def operations(draw: st.DrawFn, case: Case, taken: set[str], *, request: bool) -> dict[str, Any]:
    ops: dict[str, Any] = {}
    for op in ("set", "add"):
        entries: dict[str, str] = {}
        for _ in range(draw(st.integers(0, 2))):
            name = draw(names())
            if name.lower() in taken:
                continue
            taken.add(name.lower())
            value, expanded = draw(header_value())
            entries[name] = value
            if not request:
                case.want_response[name] = expanded
                continue
            before = [] if op == "set" or not draw(st.booleans()) else [draw(plain_values())]
            case.sent += [(name, v) for v in before]
            case.want_request[name] = [expanded] if op == "set" else [*before, expanded]
        if entries:
            ops[op] = entries
    removed: list[str] = []
    for _ in range(draw(st.integers(0, 2))):
        name = draw(names() | st.just("x-backend")) if not request else draw(names())
        if name.lower() in taken:
            continue
        taken.add(name.lower())
        removed.append(name)
        if request:
            case.sent.append((name, "gone"))
            case.want_request[name] = None
        else:
            case.want_response[name] = None
    if removed:
        ops["remove"] = removed
    return ops


@st.composite
def cases(draw: st.DrawFn, i: int) -> Case:
    case = Case(host=f"c{i}.test", route={}, path="/")
    taken: set[str] = set()
    match: dict[str, Any] = {}
    uri = draw(uri_match(case))
    if uri is not None:
        match["uri"] = uri
    match["headers"] = draw(header_matches(case, taken))
    route: dict[str, Any] = {"match": [match]}
    case.want_path = case.path
    rewrite_kind = draw(st.sampled_from(["none", "uri", "regex", "authority"]))
    if rewrite_kind == "uri":
        new = draw(PATHS)
        route["rewrite"] = {"uri": new}
        if uri is not None and "prefix" in uri:
            case.want_path = new + case.path[len(uri["prefix"]) :]
        elif uri is None:  # Istio's route matches prefix "/": that is what gets replaced
            case.want_path = new + case.path[1:]
        else:
            case.want_path = new
    elif rewrite_kind == "regex":
        pattern, substitution = draw(st.sampled_from(REGEX_REWRITES))
        route["rewrite"] = {"uriRegexRewrite": {"match": pattern, "rewrite": substitution}}
        case.want_path = re.sub(pattern, substitution, case.path)
    elif rewrite_kind == "authority":
        authority = draw(st.sampled_from(["new.example", "svc-2.ns.svc.cluster.local:8080"]))
        route["rewrite"] = {"authority": authority}
        case.want_host = authority
    headers = {
        "request": draw(operations(case, taken, request=True)),
        "response": draw(operations(case, taken, request=False)),
    }
    route["headers"] = {k: v for k, v in headers.items() if v}
    route["route"] = [{"destination": {"host": case.host, "port": {"number": 80}}}]
    case.route = route
    return case


def documents(batch: list[Case], backend_port: int) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for i, case in enumerate(batch):
        meta = {"name": f"c{i}", "namespace": "default"}
        docs.append(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "ServiceEntry",
                "metadata": meta,
                "spec": {
                    "hosts": [case.host],
                    "location": "MESH_INTERNAL",
                    "resolution": "STATIC",
                    "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
                    "endpoints": [{"address": "127.0.0.1", "ports": {"http": backend_port}}],
                },
            }
        )
        fallback = {"directResponse": {"status": 404, "body": {"string": "no match"}}}
        docs.append(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "VirtualService",
                "metadata": meta,
                "spec": {"hosts": [case.host], "http": [case.route, fallback]},
            }
        )
    return docs


class ServingEnvoy:
    """A real Envoy serving a binary bootstrap, with an admin port to see it is ready."""

    def __init__(self, boot: Any, directory: Path) -> None:
        self.admin_port = free_port()
        boot.admin.address.socket_address.address = "127.0.0.1"
        boot.admin.address.socket_address.port_value = self.admin_port
        path = directory / "bootstrap.pb"
        path.write_bytes(boot.SerializeToString())
        self.log = directory / "envoy.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [find_envoy(), "-c", str(path), "--disable-hot-restart", "--concurrency", "1",
                 "-l", "warn"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        procs.register(self.proc)

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"envoy exited: {self.log.read_text()[-3000:]}")
            return request("GET", f"http://127.0.0.1:{self.admin_port}/ready", timeout=1)[0] == 200

        wait_until(ready, 30, what="the serving Envoy ready")

    def stop(self) -> None:
        procs.terminate(self.proc)


@pytest.fixture(scope="module")
def echo() -> Iterator[Backend]:
    with Backend("echo") as backend:
        yield backend


def send(port: int, case: Case) -> tuple[int, dict[str, Any], dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", case.path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", case.host)
        conn.putheader("x-in", IN_VALUE)
        for name, value in case.sent:
            conn.putheader(name, value.encode("utf-8"))
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        headers = {k.lower(): v.encode("latin-1").decode("utf-8") for k, v in resp.getheaders()}
        try:
            echo = json.loads(body)
        except ValueError:
            echo = {"body": body.decode("utf-8", "replace")}
        return resp.status, echo, headers
    finally:
        conn.close()


def batches() -> st.SearchStrategy[list[Case]]:
    return st.integers(4, 12).flatmap(lambda n: st.tuples(*(cases(i) for i in range(n)))).map(list)


def _explicit() -> list[Case]:
    """The issue's and the README's cases, always run."""
    users = Case(
        host="c0.test",
        route={
            "match": [{"uri": {"regex": "/users/[a-z0-9-]{1,64}/orders"}}],
            "headers": {"response": {"set": {"x-share": "100%%"}}},
        },
        path="/users/ab-12/orders",
        want_path="/users/ab-12/orders",
        want_response={"x-share": "100%"},
    )
    odd = Case(
        host="c1.test",
        route={
            "match": [{"headers": {"X-Odd!#$&'*+.^_`|~": {"exact": "a b\tc é"}}}],
            "rewrite": {"uri": "/v2"},
            "headers": {
                "request": {"set": {"x-who": "%REQ(x-in)% via %%"}, "remove": ["x-drop"]},
                "response": {"add": {"x-Added": "yes"}, "remove": ["x-backend"]},
            },
        },
        path="/api/x",
        sent=[("X-Odd!#$&'*+.^_`|~", "a b\tc é"), ("x-drop", "1")],
        want_path="/v2api/x",
        want_request={"x-who": [f"{IN_VALUE} via %"], "x-drop": None},
        want_response={"x-added": "yes", "x-backend": None},
    )
    for case in (users, odd):
        case.route["route"] = [{"destination": {"host": case.host, "port": {"number": 80}}}]
    return [users, odd]


def test_envoy_serves_what_the_header_path_and_regex_fields_say(echo: Backend) -> None:
    served: list[int] = []

    @settings(
        max_examples=int(os.environ.get("SHOAL_SERVE_EXAMPLES", "6")),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(batch=batches())
    @example(batch=_explicit())
    def check(batch: list[Case]) -> None:
        docs = documents(batch, echo.port)
        text = yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True)
        result = ConfigStore().update({"cases.yaml": text})
        # every case is valid HTTP and valid Istio: refusing one is a bug too
        assert not result.errors, "\n".join(map(str, result.errors)) + "\n" + text
        gen = ConfigGenerator(build_snapshot("serve.1", result.resources))
        outbound = free_port()
        with tempfile.TemporaryDirectory() as tmp:
            envoy = ServingEnvoy(bootstrap(gen, sidecar(outbound), serve=True), Path(tmp))
            try:
                envoy.wait_ready()
                problems = _run(batch, lambda case: send(outbound, case))
            finally:
                envoy.stop()
        assert not problems, "\n".join(problems) + "\n" + text
        served.append(len(batch))

    check()
    assert sum(served) >= 20, served  # the batches were served, not skipped


def _run(
    batch: list[Case], fire: Callable[[Case], tuple[int, dict[str, Any], dict[str, str]]]
) -> list[str]:
    problems = []
    for case in batch:
        status, echo, response = fire(case)
        if status == 503 and not echo.get("header_list"):
            time.sleep(0.2)  # a cluster still warming on a loaded machine: once more
            status, echo, response = fire(case)
        for problem in case.check(status, echo, response):
            problems.append(f"{case.host} {case.path!r} sent {case.sent}: {problem}")
    return problems
