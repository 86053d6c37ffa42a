"""Oracle for the incremental engine: after any sequence of edits, every proxy's view from the
long-lived pipeline equals, byte for byte, the view of a pipeline built fresh from the files.

Every cache in the engine (parsed documents, carried services, taken-over clusters, route
tables, listeners, virtual hosts, narrowed maps, views) is keyed by what its author thought
the output depends on. A missing key does not fail a unit test; it makes a long-running
control plane keep stale config. Hypothesis drives random edit sequences over every kind --
add, change and delete documents, move them within and between files, break and fix files and
documents -- through `Pipeline.apply` with only the changed files, and after each step checks:

* the store: same resources (and where each was read from) and same errors as a store given
  every file's whole text at every step and parsing each file whole (no document cache);
* the generation: every proxy's view, byte for byte, equals that of a generator built fresh
  from a fresh snapshot of the accepted resources (a broken file keeps its last good
  resources, so a fresh *load* of the broken files is not the reference; the accepted
  configuration is).
"""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal.api import Change, ConfigStore, FileResult, Resource, parse_documents
from shoal.engine import Pipeline
from shoal.generate import PUSH_ORDER, ConfigGenerator
from shoal.model import Proxy, build_snapshot, parse_proxy

NAMESPACES = ("default", "shop")
SERVICES = ("a", "b", "c")
FILES = ("one.yaml", "two.yaml", "ns/three.yaml")
NET = "networking.istio.io/v1"
SEC = "security.istio.io/v1"
SHOAL = "shoal.dev/v1alpha1"

_ns = st.sampled_from(NAMESPACES)
_svc = st.sampled_from(SERVICES)
_version = st.sampled_from(["v1", "v2"])


def _doc(api: str, kind: str, name: str, ns: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def _host(svc: str, ns: str) -> str:
    return f"{svc}.{ns}.svc.cluster.local"


_endpoint = st.builds(
    lambda last, version, mtls, sa: {
        "address": f"10.0.0.{last}",
        "labels": {"version": version, **({"security.istio.io/tlsMode": "istio"} if mtls else {})},
        **({"serviceAccount": sa} if sa else {}),
    },
    st.integers(1, 6),
    _version,
    st.booleans(),
    st.sampled_from(["", "sa1", "sa2"]),
)


@st.composite
def service_entry(draw: st.DrawFn) -> dict[str, Any]:
    svc, ns = draw(_svc), draw(_ns)
    ports = [{"number": 80, "name": "http", "protocol": "HTTP"}]
    if draw(st.booleans()):
        ports.append({"number": 9000, "name": "tcp", "protocol": "TCP"})
    spec: dict[str, Any] = {
        "hosts": [_host(svc, ns)],
        "location": "MESH_INTERNAL",
        "resolution": "STATIC",
        "ports": ports,
    }
    if draw(st.booleans()):
        spec["workloadSelector"] = {"labels": {"app": svc}}
    else:
        eps = draw(st.lists(_endpoint, min_size=1, max_size=3, unique_by=lambda e: e["address"]))
        spec["endpoints"] = eps
    export = draw(st.sampled_from([None, ["."], ["*"], ["default"]]))
    if export is not None:
        spec["exportTo"] = export
    return _doc(NET, "ServiceEntry", svc, ns, spec)


@st.composite
def workload_entry(draw: st.DrawFn) -> dict[str, Any]:
    svc, ns, last = draw(_svc), draw(_ns), draw(st.integers(1, 4))
    spec = {"address": f"10.1.0.{last}", "labels": {"app": svc, "version": draw(_version)}}
    return _doc(NET, "WorkloadEntry", f"{svc}-{last}", ns, spec)


@st.composite
def destination_rule(draw: st.DrawFn) -> dict[str, Any]:
    svc, ns = draw(_svc), draw(_ns)
    spec: dict[str, Any] = {
        "host": svc,
        "subsets": [
            {"name": v, "labels": {"version": v}}
            for v in draw(st.sampled_from([["v1"], ["v1", "v2"]]))
        ],
    }
    lb = draw(st.sampled_from([None, "ROUND_ROBIN", "RANDOM", "LEAST_REQUEST"]))
    if lb is not None:
        spec["trafficPolicy"] = {"loadBalancer": {"simple": lb}}
    if draw(st.booleans()):
        spec.setdefault("trafficPolicy", {})["tls"] = {"mode": "ISTIO_MUTUAL"}
    return _doc(NET, "DestinationRule", svc, ns, spec)


@st.composite
def virtual_service(draw: st.DrawFn) -> dict[str, Any]:
    svc, ns = draw(_svc), draw(_ns)
    v1 = draw(st.integers(0, 100))
    route: list[dict[str, Any]] = [
        {"destination": {"host": svc, "subset": "v1"}, "weight": v1},
        {"destination": {"host": svc, "subset": "v2"}, "weight": 100 - v1},
    ]
    http: list[dict[str, Any]] = []
    match = draw(st.sampled_from([None, "labels", "namespace", "header"]))
    only = [{"destination": {"host": svc, "subset": draw(_version)}}]
    if match == "labels":
        http.append({"match": [{"sourceLabels": {"app": "client"}}], "route": only})
    elif match == "namespace":
        http.append({"match": [{"sourceNamespace": "shop"}], "route": only})
    elif match == "header":
        http.append({"match": [{"headers": {"x": {"exact": "1"}}}], "route": only})
    http.append({"route": route, **({"timeout": "2s"} if draw(st.booleans()) else {})})
    spec: dict[str, Any] = {"hosts": [svc], "http": http}
    if draw(st.booleans()):
        spec["gateways"] = draw(st.sampled_from([["ingress"], ["ingress", "mesh"]]))
        spec["hosts"] = [svc, "shop.example.com"]
    return _doc(NET, "VirtualService", svc, ns, spec)


@st.composite
def sidecar_scope(draw: st.DrawFn) -> dict[str, Any]:
    hosts = draw(st.sampled_from([["./*"], ["*/*"], ["./*", "shop/*"]]))
    return _doc(NET, "Sidecar", "default", draw(_ns), {"egress": [{"hosts": hosts}]})


@st.composite
def gateway(draw: st.DrawFn) -> dict[str, Any]:
    port = draw(st.sampled_from([8080, 8081]))
    spec = {
        "selector": {"istio": "ingressgateway"},
        "servers": [{"port": {"number": port, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}],
    }
    return _doc(NET, "Gateway", "ingress", draw(_ns), spec)


@st.composite
def peer_authentication(draw: st.DrawFn) -> dict[str, Any]:
    mode = draw(st.sampled_from(["STRICT", "PERMISSIVE", "DISABLE"]))
    return _doc(SEC, "PeerAuthentication", "default", draw(_ns), {"mtls": {"mode": mode}})


@st.composite
def authorization_policy(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"action": draw(st.sampled_from(["ALLOW", "DENY"]))}
    if draw(st.booleans()):
        spec["rules"] = [{"from": [{"source": {"namespaces": [draw(_ns)]}}]}]
    if draw(st.booleans()):
        spec["selector"] = {"matchLabels": {"app": "client"}}
    return _doc(SEC, "AuthorizationPolicy", "policy", draw(_ns), spec)


@st.composite
def rate_limit(draw: st.DrawFn) -> dict[str, Any]:
    spec = {
        "workloadSelector": {"labels": {"app": "client"}},
        "maxTokens": draw(st.integers(1, 50)),
        "fillInterval": "1s",
    }
    return _doc(SHOAL, "LocalRateLimit", "client", draw(_ns), spec)


@st.composite
def mesh_config(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    export = draw(st.sampled_from([None, ["."], ["*"]]))
    if export is not None:
        spec["defaultServiceExportTo"] = export
    if draw(st.booleans()):
        spec["defaultHttpRetryPolicy"] = {"attempts": draw(st.integers(0, 3))}
    return _doc(SHOAL, "MeshConfig", "mesh", "istio-system", spec)


KINDS = st.one_of(
    service_entry(),
    workload_entry(),
    destination_rule(),
    virtual_service(),
    sidecar_scope(),
    gateway(),
    peer_authentication(),
    authorization_policy(),
    rate_limit(),
    mesh_config(),
)

# An edit is an operation on the model below: file -> list of document texts.
_EDITS = st.one_of(
    st.tuples(st.just("add"), st.sampled_from(FILES), KINDS),
    st.tuples(st.just("change"), st.integers(0, 50), KINDS),  # replace the n-th document
    st.tuples(st.just("delete"), st.integers(0, 50)),
    st.tuples(st.just("move"), st.integers(0, 50), st.sampled_from(FILES), st.integers(0, 5)),
    st.tuples(st.just("pad"), st.sampled_from(FILES)),  # lines above every document
    st.tuples(st.just("break_file"), st.sampled_from(FILES)),
    st.tuples(st.just("break_doc"), st.integers(0, 50)),
    st.tuples(st.just("fix"), st.sampled_from(FILES)),
    st.tuples(st.just("remove_file"), st.sampled_from(FILES)),
)


def _base() -> list[tuple[str, str, dict[str, Any]]]:
    """Every service in both namespaces with both subsets, so rules have something to name."""
    out = []
    for n, (svc, ns) in enumerate((s, n) for s in SERVICES for n in NAMESPACES):
        port = {"number": 80, "name": "http", "protocol": "HTTP"}
        eps = [{"address": f"10.2.{n}.{i}", "labels": {"version": f"v{i}"}} for i in (1, 2)]
        se = {"hosts": [_host(svc, ns)], "resolution": "STATIC", "ports": [port], "endpoints": eps}
        subsets = [{"name": v, "labels": {"version": v}} for v in ("v1", "v2")]
        out.append(("add", FILES[n % 2], _doc(NET, "ServiceEntry", svc, ns, se)))
        out.append(
            (
                "add",
                FILES[n % 2],
                _doc(NET, "DestinationRule", svc, ns, {"host": svc, "subsets": subsets}),
            )
        )
    return out


BASE = _base()


class Files:
    """The config directory as documents per file, rendered to text like a user's files."""

    def __init__(self) -> None:
        self.docs: dict[str, list[str]] = {}
        self.head: dict[str, str] = {}  # comment lines above the first document
        self.broken: set[str] = set()

    def text(self, path: str) -> str | None:
        if path not in self.docs:
            return None
        body = self.head.get(path, "") + "---\n".join(self.docs[path])
        return body + ("\nbroken: [\n" if path in self.broken else "")

    def all(self) -> dict[str, str]:
        return {p: t for p in sorted(self.docs) if (t := self.text(p)) is not None}

    def _locate(self, n: int) -> tuple[str, int] | None:
        places = [(p, i) for p in sorted(self.docs) for i in range(len(self.docs[p]))]
        return places[n % len(places)] if places else None

    def edit(self, op: tuple[Any, ...]) -> set[str]:
        """Apply `op`; the paths whose text may have changed."""
        kind = op[0]
        if kind == "add":
            self.docs.setdefault(op[1], []).append(yaml.safe_dump(op[2], sort_keys=False))
            return {op[1]}
        if kind in ("break_file", "fix", "pad", "remove_file"):
            path = op[1]
            if kind == "break_file":
                self.broken.add(path)
            elif kind == "fix":
                self.broken.discard(path)
            elif kind == "pad":
                self.head[path] = self.head.get(path, "") + "# a comment\n\n"
            else:
                self.docs.pop(path, None)
                self.broken.discard(path)
            return {path}
        place = self._locate(op[1])
        if place is None:
            return set()
        path, i = place
        if kind == "change":
            self.docs[path][i] = yaml.safe_dump(op[2], sort_keys=False)
            return {path}
        if kind == "delete":
            del self.docs[path][i]
            return {path}
        if kind == "break_doc":
            self.docs[path][i] = self.docs[path][i].replace("spec:", "spec:\n  nonsense: 1", 1)
            return {path}
        target, at = op[2], op[3]
        doc = self.docs[path].pop(i)
        docs = self.docs.setdefault(target, [])
        docs.insert(min(at, len(docs)), doc)
        return {path, target}


def _proxy(kind: str, ns: str, name: str, **meta: str) -> Proxy:
    metadata: dict[str, object] = {
        "NAMESPACE": ns,
        "LABELS": {"app": name, "istio": "ingressgateway"} if kind == "router" else {"app": name},
        "INTERCEPTION_MODE": "NONE",
        "OUTBOUND_PORT": "15001",
        "INBOUND_PORT": "15006",
        "APP_PORT": "8080",
        **meta,
    }
    return parse_proxy(f"{kind}~127.0.0.1~{name}.{ns}~{ns}.svc.cluster.local", metadata)


PROXIES = (
    _proxy("sidecar", "default", "client"),
    _proxy("sidecar", "default", "other"),
    _proxy("sidecar", "shop", "client", SECURE="true"),
    _proxy("sidecar", "shop", "worker"),
    _proxy("router", "default", "ingress"),
    # proxyless gRPC clients (generate/proxyless.py take over per service and per shape)
    _proxy("sidecar", "default", "grpc", GENERATOR="grpc"),
    _proxy("sidecar", "shop", "grpc", GENERATOR="grpc", SECURE="true"),
)


class WholeFileStore(ConfigStore):
    """The reference store: every file parsed whole, every time."""

    def _parse(self, change: Change) -> FileResult:
        assert change.text is not None
        return parse_documents(change.source, change.text)


def _placed(resources: tuple[Resource, ...]) -> list[tuple[object, ...]]:
    return [(r, r.origin.file, r.origin.line) for r in resources]


def _wire(generation: ConfigGenerator, proxy: Proxy) -> dict[str, dict[str, bytes]]:
    view = generation.view(proxy)
    return {t: {n: r.any_bytes for n, r in view.of(t).items()} for t in PUSH_ORDER}


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.lists(st.tuples(st.just("add"), st.sampled_from(FILES), KINDS), min_size=3, max_size=12),
    st.lists(_EDITS, min_size=1, max_size=12),
)
def test_every_view_after_any_edit_sequence_equals_a_fresh_build(
    initial: list[Any], edits: list[Any]
) -> None:
    files = Files()
    for op in [*BASE, *initial]:
        files.edit(op)
    live = Pipeline("live")
    live.load(files.all())
    reference = WholeFileStore()
    reference.update(files.all())
    for op in edits:
        touched = files.edit(op)
        live.apply([Change.file(p, files.text(p)) for p in sorted(touched)])
        expected = reference.update(files.all())
        assert live.errors == expected.errors, op
        assert _placed(live.store.resources) == _placed(expected.resources), op
        assert live.generation is not None
        fresh = ConfigGenerator(build_snapshot("fresh", expected.resources))
        for proxy in PROXIES:
            assert _wire(live.generation, proxy) == _wire(fresh, proxy), (op, proxy.node_id)
