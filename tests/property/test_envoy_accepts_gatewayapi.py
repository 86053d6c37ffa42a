"""Property: whatever Gateway API routes shoal accepts, the translation keeps every one (no
route silently left out) and Envoy accepts what is generated from them, for the Gateway's
router and (GAMMA) for a sidecar.

Each example is an HTTPRoute on a Gateway listener and one on a Service, with rules drawn
from the fields shoal implements (path/header/query/method matches, weights, every filter,
timeouts); what the store refuses is counted, so the run cannot pass by refusing everything.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from shoal.api import ConfigStore
from shoal.api.gatewayapi import GATEWAY_NAME_LABEL
from shoal.generate import ConfigGenerator
from shoal.model import build_snapshot
from shoal.model.gatewayapi import translate
from shoal.model.proxy import parse_proxy

from .envoyboot import bootstrap, secure_sidecar, validate

BASE = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: svc, namespace: default}
spec:
  hosts: [svc0.default.svc.cluster.local, svc1.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.1}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: default}
spec:
  gatewayClassName: shoal
  listeners: [{name: http, port: 8080, protocol: HTTP}]
"""

_WORD = st.sampled_from(["a", "b", "api", "v1", "x.y", "~u", "%20"])
_PATH = st.lists(_WORD, min_size=0, max_size=3).map(lambda p: "/" + "/".join(p))
_HEADER = st.sampled_from(["x-a", "X-B", "user-agent", "x-c"])
_VALUE = st.sampled_from(["1", "yes", "a b", "^v[0-9]+$", "*"])


def _match() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "path": st.one_of(
                st.builds(lambda v: {"type": "Exact", "value": v}, _PATH),
                st.builds(lambda v: {"type": "PathPrefix", "value": v}, _PATH),
                st.builds(lambda v: {"type": "RegularExpression", "value": v + ".*"}, _PATH),
            ),
            "headers": st.lists(
                st.builds(
                    lambda n, v, t: {"name": n, "value": v, "type": t},
                    _HEADER,
                    _VALUE,
                    st.sampled_from(["Exact", "RegularExpression"]),
                ),
                max_size=2,
                unique_by=lambda h: h["name"].lower(),
            ),
            "queryParams": st.lists(
                st.builds(lambda n, v: {"name": n, "value": v}, _WORD, _VALUE),
                max_size=2,
                unique_by=lambda q: q["name"],
            ),
            "method": st.sampled_from(["GET", "POST", "DELETE"]),
        },
    )


def _modifier() -> st.SearchStrategy[dict[str, Any]]:
    header = st.builds(lambda n, v: {"name": n, "value": v}, _HEADER, _VALUE)
    return st.fixed_dictionaries(
        {},
        optional={
            "set": st.lists(header, max_size=2, unique_by=lambda h: h["name"].lower()),
            "add": st.lists(header, max_size=2, unique_by=lambda h: h["name"].lower()),
            "remove": st.lists(_HEADER, max_size=2, unique=True),
        },
    )


def _path_modifier() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(lambda p: {"type": "ReplaceFullPath", "replaceFullPath": p}, _PATH),
        st.builds(lambda p: {"type": "ReplacePrefixMatch", "replacePrefixMatch": p}, _PATH),
    )


def _filters(redirect: bool) -> st.SearchStrategy[list[dict[str, Any]]]:
    request, response = "RequestHeaderModifier", "ResponseHeaderModifier"
    options = [
        st.builds(lambda m: {"type": request, "requestHeaderModifier": m}, _modifier()),
        st.builds(lambda m: {"type": response, "responseHeaderModifier": m}, _modifier()),
        st.builds(
            lambda b, p: {"type": "RequestMirror",
                          "requestMirror": {"backendRef": {"name": b, "port": 80}, **p}},
            st.sampled_from(["svc0", "svc1"]),
            st.sampled_from([{}, {"percent": 50}]),
        ),
    ]  # fmt: skip
    if redirect:
        options.append(
            st.builds(
                lambda s, h, p, c: {"type": "RequestRedirect", "requestRedirect": {
                    **s, **h, **p, "statusCode": c}},
                st.sampled_from([{}, {"scheme": "https"}]),
                st.sampled_from([{}, {"hostname": "b.example.com"}]),
                st.one_of(st.just({}), _path_modifier().map(lambda p: {"path": p})),
                st.sampled_from([301, 302]),
            )
        )  # fmt: skip
    else:
        options.append(
            st.builds(
                lambda h, p: {"type": "URLRewrite", "urlRewrite": {**h, **p}},
                st.sampled_from([{}, {"hostname": "b.example.com"}]),
                st.one_of(st.just({}), _path_modifier().map(lambda p: {"path": p})),
            )
        )  # fmt: skip
    return st.lists(st.one_of(*options), max_size=3)


@st.composite
def _rule(draw: st.DrawFn) -> dict[str, Any]:
    redirect = draw(st.booleans())
    rule: dict[str, Any] = {
        "matches": draw(st.lists(_match(), max_size=2)),
        "filters": draw(_filters(redirect)),
    }
    if not (redirect and any(f["type"] == "RequestRedirect" for f in rule["filters"])):
        rule["backendRefs"] = draw(
            st.lists(
                st.builds(
                    lambda n, w: {"name": n, "port": 80, "weight": w},
                    st.sampled_from(["svc0", "svc1"]),
                    st.integers(0, 5),
                ),
                max_size=3,
            )
        )
    timeouts = draw(
        st.sampled_from([None, {"request": "2s"}, {"request": "3s", "backendRequest": "500ms"}])
    )
    if timeouts is not None:
        rule["timeouts"] = timeouts
    return rule


def _route(name: str, parent: dict[str, Any], rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"parentRefs": [parent], "hostnames": ["a.example.com"], "rules": rules},
    }


def _router() -> Any:
    return parse_proxy(
        "router~127.0.0.1~edge.default~default.svc.cluster.local",
        {"NAMESPACE": "default", "LABELS": {GATEWAY_NAME_LABEL: "edge"},
         "SERVICE_ACCOUNT": "edge", "INSTANCE_IPS": "127.0.0.1", "SECURE": "true"},
    )  # fmt: skip


def test_envoy_accepts_what_shoal_makes_of_any_gateway_api_route() -> None:
    seen: Counter[str] = Counter()

    @settings(
        max_examples=int(os.environ.get("SHOAL_WILD_EXAMPLES", "25")),
        deadline=None,
        database=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        edge=st.lists(_rule(), min_size=1, max_size=3),
        mesh=st.lists(_rule(), min_size=1, max_size=2),
    )
    def check(edge: list[dict[str, Any]], mesh: list[dict[str, Any]]) -> None:
        docs = [
            _route("edge", {"name": "edge"}, edge),
            _route("mesh", {"group": "", "kind": "Service", "name": "svc0", "port": 80}, mesh),
        ]
        text = yaml.safe_dump_all(docs, sort_keys=False)
        result = ConfigStore().update({"base.yaml": BASE, "routes.yaml": text})
        routes = [r for r in result.resources if r.kind == "HTTPRoute"]
        seen["accepted"] += len(routes)
        seen["refused"] += 2 - len(routes)
        made = [r for r in translate(list(result.resources)) if r.kind == "VirtualService"]
        # every accepted route is served: none dropped by the translation
        assert len(made) == len(routes), (text, result.errors)
        snapshot = build_snapshot("gwapi.1", result.resources)
        gen = ConfigGenerator(snapshot)
        for proxy in (_router(), secure_sidecar()):
            with tempfile.TemporaryDirectory() as tmp:
                ok, output = validate(bootstrap(gen, proxy), Path(tmp))
            assert ok, f"{proxy.type}: {output}\n{text}"

    check()
    print(sorted(seen.items()))
    assert seen["accepted"] >= 20, seen  # not vacuous
