"""Property: whatever shoal accepts, from any input at all, Envoy accepts what shoal generates.

The existing property test (test_envoy_accepts_generated.py) draws valid Istio YAML only. Here
each field is drawn from its whole type (wild.py): usually a plausible value, sometimes any
string, number, duration text or value of another type, and lists of any size. Every example
is a mesh of a few services (ServiceEntry, DestinationRule, VirtualService each); shoal refuses
some documents with reasons and accepts the rest, and everything it generates from what it
accepted goes into one bootstrap for `envoy --mode validate`: one Envoy run per example.

The test also counts how many documents were accepted and refused over the run, so it cannot
pass by refusing everything (or by generating nothing wild).
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal.api import ConfigStore
from shoal.generate import ConfigGenerator
from shoal.model import build_snapshot

from .envoyboot import bootstrap, sidecar, validate
from .wild import Kind, any_text, field, maybe, some

SUBSETS = ("v1", "v2")
_REGEX = st.sampled_from(
    ["/items/[0-9]+", "/users/[a-z0-9-]{1,64}/orders", ".*", "^/a(b|c)?$", "[[:alpha:]]+", "x"]
)
_DUR = st.sampled_from(["1ms", "250ms", "1s", "30s", "5m", "1h"])
_NAMES = st.sampled_from(["x-a", "x-b", "x-user", "end-user", "X-Mixed"])
_REMOVABLE = st.sampled_from(["x-a", "x-b", "x-debug"])
# how often a field goes wild: in the drawn document, and in the others
RATE, RARE = 14, 150
_VALUES = st.sampled_from(["1", "a b", "100%%", "%DOWNSTREAM_REMOTE_ADDRESS%", "h.example"])


_COUNT = st.integers(0, 1000)


class Wild:
    """Field strategies that go wild 1 time in `rate` (0: never)."""

    def __init__(self, rate: int) -> None:
        self.rate = rate

    def _field(self, good: Any, kind: Kind) -> st.SearchStrategy[Any]:
        if not self.rate:
            return good if isinstance(good, st.SearchStrategy) else st.just(good)
        return field(good, kind, wild=self.rate)

    def n(self, good: st.SearchStrategy[int] | int = _COUNT) -> st.SearchStrategy[Any]:
        return self._field(good, "int")

    def d(self, good: st.SearchStrategy[str] = _DUR) -> st.SearchStrategy[Any]:
        return self._field(good, "duration")

    def t(self, good: st.SearchStrategy[str] | str) -> st.SearchStrategy[Any]:
        return self._field(good, "text")

    def f(self, good: st.SearchStrategy[float]) -> st.SearchStrategy[Any]:
        return self._field(good, "float")

    def b(self) -> st.SearchStrategy[Any]:
        return self._field(st.booleans(), "any")

    def percent(self) -> st.SearchStrategy[dict[str, Any]]:
        return st.builds(lambda v: {"value": v}, self.f(st.floats(0, 100, allow_nan=False)))


def string_match(w: Wild, good: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(lambda v: {"exact": v}, w.t(good)),
        st.builds(lambda v: {"prefix": v}, w.t(good)),
        st.builds(lambda v: {"regex": v}, w.t(_REGEX)),
    )


def header_ops(w: Wild, *, request: bool) -> st.SearchStrategy[dict[str, Any]]:
    pair = st.tuples(w.t(_NAMES), w.t(_VALUES))
    if request:  # Host / :authority set as a header rewrites the authority
        pair |= st.tuples(w.t(st.sampled_from(["host", ":authority"])), w.t("h.example:8080"))
    pairs = st.lists(pair, max_size=3).map(dict)
    return maybe({"set": pairs, "add": pairs, "remove": some(w.t(_REMOVABLE))})


def headers(w: Wild) -> st.SearchStrategy[dict[str, Any]]:
    return maybe({"request": header_ops(w, request=True), "response": header_ops(w, request=False)})


def match(w: Wild) -> st.SearchStrategy[dict[str, Any]]:
    paths = st.sampled_from(["/api", "/health", "/"])
    names = w.t(st.sampled_from(["x-user", "end-user", ":method", "x-b"]))
    return maybe(
        {
            "uri": string_match(w, paths),
            "headers": st.dictionaries(names, string_match(w, st.just("jason")), max_size=2),
            "withoutHeaders": st.dictionaries(names, string_match(w, st.just("x")), max_size=1),
            "queryParams": st.dictionaries(w.t("q"), string_match(w, st.just("1")), max_size=2),
            "method": string_match(w, st.just("GET")),
            "authority": string_match(w, st.just("svc.example")),
            "scheme": string_match(w, st.just("http")),
            "ignoreUriCase": w.b(),
        }
    )


def _flatten_mirror(policy: dict[str, Any]) -> dict[str, Any]:
    # "mirror" is drawn with its mirrorPercentage: both go into the route
    return {k: v for k, v in policy.items() if k != "mirror"} | policy.get("mirror", {})


def policies(w: Wild, host: str, port: int) -> st.SearchStrategy[dict[str, Any]]:
    dest = {"host": host, "subset": "v2", "port": {"number": port}}
    abort = st.one_of(
        st.builds(lambda s: {"httpStatus": s}, w.n(st.sampled_from([400, 503]))),
        st.builds(lambda s: {"grpcStatus": s}, w.t("UNAVAILABLE")),
    )
    return maybe(
        {
            "timeout": w.d(),
            "retries": maybe(
                {
                    "attempts": w.n(st.integers(0, 5)),
                    "perTryTimeout": w.d(),
                    "retryOn": w.t(st.sampled_from(["5xx", "gateway-error,503", "reset"])),
                    "backoff": w.d(),
                }
            ),
            "fault": st.one_of(
                st.builds(
                    lambda p, d: {"delay": {"percentage": p, "fixedDelay": d}}, w.percent(), w.d()
                ),
                st.builds(lambda p, a: {"abort": {"percentage": p, **a}}, w.percent(), abort),
            ),
            "mirror": st.builds(
                lambda p: {"mirror": dest} | p, maybe({"mirrorPercentage": w.percent()})
            ),
            "rewrite": st.one_of(
                st.builds(lambda u: {"uri": u}, w.t(st.sampled_from(["/v2", "/", "/a/b"]))),
                st.builds(lambda a: {"authority": a}, w.t("new.example")),
                st.builds(
                    lambda m, r: {"uriRegexRewrite": {"match": m, "rewrite": r}},
                    w.t("^/items/([0-9]+)"),
                    w.t(st.sampled_from(["/i/\\1", "/x"])),
                ),
            ),
            "headers": headers(w),
            "corsPolicy": maybe(
                {
                    "allowOrigins": some(string_match(w, st.just("https://example.com"))),
                    "allowMethods": some(w.t(st.sampled_from(["GET", "POST"]))),
                    "allowHeaders": some(w.t(st.sampled_from(["x-a", "content-type"]))),
                    "exposeHeaders": some(w.t("x-b")),
                    "maxAge": w.d(),
                    "allowCredentials": w.b(),
                }
            ),
        }
    ).map(_flatten_mirror)


def http_route(w: Wild, host: str, port: int) -> st.SearchStrategy[dict[str, Any]]:
    split = st.integers(0, 100)
    weighted = split.flatmap(
        lambda pct: st.tuples(
            w.n(pct), w.n(100 - pct), w.t("v1"), st.one_of(st.none(), headers(w))
        ).map(
            lambda t: [
                {"destination": {"host": host, "subset": t[2], "port": {"number": port}},
                 "weight": t[0]} | ({"headers": t[3]} if t[3] else {}),
                {"destination": {"host": host, "subset": "v2", "port": {"number": port}},
                 "weight": t[1]},
            ]
        )
    )  # fmt: skip
    action = st.one_of(
        weighted.map(lambda r: {"route": r}),
        weighted.map(lambda r: {"route": r}),
        st.builds(
            lambda u, a, s: {"redirect": {"uri": u, "authority": a, "scheme": s}},
            w.t("/moved"),
            w.t("other.example"),
            w.t("https"),
        ),
        st.builds(
            lambda s, b: {"directResponse": {"status": s, "body": {"string": b}}},
            w.n(st.sampled_from([200, 503])),
            w.t("back soon"),
        ),
    )
    return st.builds(
        lambda m, a, p: ({"match": m} if m else {}) | a | p,
        some(match(w), most=2),
        action,
        policies(w, host, port),
    ).map(lambda r: {k: v for k, v in r.items() if not ("redirect" in r and k == "rewrite")})


def traffic_policy(w: Wild) -> st.SearchStrategy[dict[str, Any]]:
    hash_key = st.one_of(
        st.builds(lambda h: {"httpHeaderName": h}, w.t("x-user")),
        st.builds(lambda q: {"httpQueryParameterName": q}, w.t("u")),
        st.builds(
            lambda n, p, ttl, an, av: {"httpCookie": {
                "name": n, "path": p, "ttl": ttl, "attributes": [{"name": an, "value": av}]
            }},
            w.t("s"), w.t("/"), w.d(st.just("0s")), w.t("SameSite"), w.t("Lax"),
        ),
    )  # fmt: skip
    algo = st.one_of(
        st.just({}),
        st.builds(lambda n: {"ringHash": {"minimumRingSize": n}}, w.n(64)),
        st.builds(lambda n: {"maglev": {"tableSize": n}}, w.n(st.sampled_from([5, 65537]))),
    )
    lb = st.one_of(
        st.builds(lambda s: {"simple": s}, w.t(st.sampled_from(["ROUND_ROBIN", "RANDOM"]))),
        st.builds(lambda k, a: {"consistentHash": k | a}, hash_key, algo),
    )
    pool = maybe(
        {
            "tcp": maybe(
                {
                    "maxConnections": w.n(),
                    "connectTimeout": w.d(),
                    "maxConnectionDuration": w.d(),
                    "idleTimeout": w.d(),
                    "tcpKeepalive": maybe(
                        {
                            "probes": w.n(3),
                            "time": w.d(st.just("10s")),
                            "interval": w.d(st.just("5s")),
                        }
                    ),
                }
            ),
            "http": maybe(
                {
                    "http1MaxPendingRequests": w.n(),
                    "http2MaxRequests": w.n(),
                    "maxRequestsPerConnection": w.n(),
                    "maxRetries": w.n(),
                    "maxConcurrentStreams": w.n(),
                    "idleTimeout": w.d(),
                }
            ),
        }
    )
    outlier = maybe(
        {
            "consecutive5xxErrors": w.n(5),
            "consecutiveGatewayErrors": w.n(5),
            "consecutiveLocalOriginFailures": w.n(5),
            "splitExternalLocalOriginErrors": w.b(),
            "interval": w.d(),
            "baseEjectionTime": w.d(),
            "maxEjectionPercent": w.n(st.integers(0, 100)),
            "minHealthPercent": w.n(st.integers(0, 100)),
        }
    )
    budget = maybe(
        {
            "percent": w.f(st.floats(0, 100)),
            "minRetryConcurrency": w.n(st.integers(0, 10)),
        }
    )
    tls = st.builds(
        lambda m, sni, sans: {"mode": m, "sni": sni, "subjectAltNames": sans},
        w.t(st.sampled_from(["DISABLE", "SIMPLE"])),
        w.t("svc.example"),
        some(w.t("spiffe://cluster.local/ns/default/sa/a")),
    )
    return maybe(
        {
            "loadBalancer": lb,
            "connectionPool": pool,
            "outlierDetection": outlier,
            "retryBudget": budget,
            "tls": tls,
        }
    )


@st.composite
def service(draw: st.DrawFn, i: int) -> list[dict[str, Any]]:
    """ServiceEntry, DestinationRule and VirtualService of one service.

    One of the three (drawn) has its fields go wild often, the other two rarely, so that most
    documents that refer to each other stay valid together and the wild one is judged alone.
    """
    target = draw(st.sampled_from(["ServiceEntry", "DestinationRule", "VirtualService"]))
    wild = {
        k: Wild(RATE if k == target else RARE)
        for k in ("ServiceEntry", "DestinationRule", "VirtualService")
    }
    w = wild["ServiceEntry"]
    ns = draw(st.sampled_from(["default", "shop"]))
    host = f"svc{i}.{ns}.svc.cluster.local"
    numbers = draw(st.lists(st.sampled_from([80, 8080, 9090]), min_size=1, max_size=2, unique=True))
    ports = [
        {
            "number": draw(w.n(n)),
            "name": draw(w.t(f"p{n}")),
            "protocol": draw(w.t(st.sampled_from(["HTTP", "HTTP2", "GRPC", "TCP"]))),
        }
        for n in numbers
    ]
    dns = draw(st.booleans())
    endpoints = [
        {
            "address": draw(w.t(f"svc{i}-{k}.example.internal" if dns else f"10.0.{i}.{k + 1}")),
            "labels": {"version": SUBSETS[k % 2]},
        }
        | ({"weight": draw(w.n(st.integers(1, 100)))} if draw(st.booleans()) else {})
        for k in range(draw(st.integers(1, 3)))
    ]
    meta = {"name": f"svc{i}", "namespace": ns}
    entry = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": meta,
        "spec": {
            "hosts": [draw(w.t(host))],
            "location": "MESH_INTERNAL",
            "resolution": "DNS" if dns else "STATIC",
            "ports": ports,
            "endpoints": endpoints,
        },
    }
    w = wild["DestinationRule"]
    rule = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": meta,
        "spec": {
            "host": host,
            "trafficPolicy": draw(traffic_policy(w)),
            "subsets": [
                {"name": draw(w.t(s)), "labels": {"version": s}}
                | ({"trafficPolicy": draw(traffic_policy(w))} if draw(st.booleans()) else {})
                for s in SUBSETS
            ],
        },
    }
    w = wild["VirtualService"]
    routes = draw(st.lists(http_route(w, host, numbers[0]), min_size=1, max_size=3))
    vs = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": meta,
        "spec": {"hosts": [host], "http": routes},
    }
    return [entry, rule, vs]


@st.composite
def mesh(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(1, 4))
    return [doc for i in range(n) for doc in draw(service(i))]


def test_envoy_accepts_whatever_shoal_accepts_from_any_input() -> None:
    seen: Counter[str] = Counter()

    @settings(
        max_examples=int(os.environ.get("SHOAL_WILD_EXAMPLES", "60")),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(docs=mesh(), extra=any_text())
    def check(docs: list[dict[str, Any]], extra: str) -> None:
        # a free-form string in a label: metadata carries it into Envoy's node-independent config
        docs[0]["metadata"]["labels"] = {"note": extra}
        text = yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True)
        result = ConfigStore().update({"mesh.yaml": text})
        accepted = Counter(r.kind for r in result.resources)
        refused = Counter(kind for kind, _ in {(e.kind, e.name) for e in result.errors})
        seen.update({f"accepted {k}": v for k, v in accepted.items()})
        seen.update({f"refused {k}": v for k, v in refused.items()})
        gen = ConfigGenerator(build_snapshot("wild.1", result.resources))
        with tempfile.TemporaryDirectory() as tmp:
            ok, output = validate(bootstrap(gen, sidecar()), Path(tmp))
        assert ok, output + "\n" + text + "\nshoal refused:\n" + "\n".join(map(str, result.errors))

    check()
    # Not vacuous: wild fields were refused, and many documents (with the rest) got through.
    for kind in ("VirtualService", "DestinationRule", "ServiceEntry"):
        assert seen[f"accepted {kind}"] >= 10, seen  # a floor: one draw of 60 accepted 15
        assert seen[f"refused {kind}"] >= 5, seen
