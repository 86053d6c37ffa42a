"""The dashboard's service graph: workloads as nodes, who-calls-whom as edges, each with its
request rate, success rate, p99 latency and whether the connection was mutual TLS.

Computed from two scrapes of every proxy's Istio metrics a window apart, the way Kiali reads
`istio_requests_total`: traffic inside the mesh from the callers' sidecars
(`reporter="source"`), traffic from outside it (no sidecar on the caller, `source_workload`
unknown) from the callees' (`reporter="destination"`). Health uses Kiali's thresholds for
HTTP: any 5xx is degraded, 10 % or more failing. The layout (layers from the callers at the
left to the callees at the right) is computed here too, so the page only draws.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from shoal.telemetry.golden import DURATION_BUCKET, REQUESTS, increase, quantile
from shoal.telemetry.promtext import Sample

UNKNOWN = "unknown"
# Kiali's HTTP health: a share of 5xx at or above this is "failing" (red), any is "degraded"
FAILING_AT = 0.10
# layout grid, in SVG user units: the page draws 170 x 54 boxes centred on these points, with
# room between columns for the edges' labels and above the first row for arcs over a box
COLUMN_W = 320
ROW_H = 110
MARGIN_X = 110
MARGIN_Y = 90


@dataclass(frozen=True)
class Proxy:
    """A connected proxy, as the control plane knows it (for nodes without traffic)."""

    namespace: str
    workload: str
    kind: str = "sidecar"  # or "router" (a gateway)


@dataclass(frozen=True)
class Signals:
    """Golden signals of one node or edge over the window (None: not known, or idle)."""

    requests: float = 0.0
    rps: float | None = None
    success: float | None = None
    p99: float | None = None  # ms

    @property
    def health(self) -> str:
        if self.rps is None or self.requests <= 0 or self.success is None:
            return "idle"
        failed = 1.0 - self.success
        if failed >= FAILING_AT - 1e-9:  # 1 - 0.9 is a hair below 0.1 in floating point
            return "failing"
        return "degraded" if failed > 0 else "ok"

    def to_json(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "rps": self.rps,
            "success": self.success,
            "p99": self.p99,
            "health": self.health,
        }


@dataclass(frozen=True)
class Node:
    id: str  # "namespace/workload", or "svc:namespace/name" when no workload is known
    namespace: str
    name: str
    kind: str  # "workload", "gateway", "service" (no endpoint), "external" (outside the mesh)
    replicas: int
    services: tuple[str, ...]  # services it was called as
    inbound: Signals  # as its own sidecars served it
    x: float = 0.0
    y: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "namespace": self.namespace,
            "name": self.name,
            "kind": self.kind,
            "replicas": self.replicas,
            "services": list(self.services),
            "x": self.x,
            "y": self.y,
            **self.inbound.to_json(),
        }


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    signals: Signals
    mtls: bool

    def to_json(self) -> dict[str, object]:
        return {"src": self.src, "dst": self.dst, "mtls": self.mtls, **self.signals.to_json()}


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    width: float
    height: float
    window_s: float | None  # None: one scrape only, no rates yet

    def to_json(self) -> dict[str, object]:
        return {
            "nodes": [n.to_json() for n in self.nodes],
            "edges": [e.to_json() for e in self.edges],
            "width": self.width,
            "height": self.height,
            "window_s": self.window_s,
        }


@dataclass
class _Acc:
    """Counts of one node or edge while the samples are read."""

    requests: float = 0.0
    ok: float = 0.0
    buckets: dict[float, float] = field(default_factory=lambda: defaultdict(float))

    def signals(self, window_s: float | None) -> Signals:
        if window_s is None:
            return Signals(requests=self.requests)
        return Signals(
            requests=self.requests,
            rps=self.requests / window_s if window_s > 0 else 0.0,
            success=self.ok / self.requests if self.requests else None,
            p99=quantile(0.99, self.buckets),
        )


def _known(value: str) -> bool:
    return value not in ("", UNKNOWN)


def _source_id(s: Sample) -> str | None:
    """The calling node, or None when the caller is outside the mesh."""
    if not _known(s.get("source_workload")):
        return None
    return f"{s.get('source_workload_namespace')}/{s.get('source_workload')}"


def _destination_id(s: Sample) -> str:
    if _known(s.get("destination_workload")):
        return f"{s.get('destination_workload_namespace')}/{s.get('destination_workload')}"
    name = s.get("destination_service_name") or s.get("destination_service") or UNKNOWN
    return f"svc:{s.get('destination_service_namespace') or UNKNOWN}/{name}"


def _edge_key(s: Sample) -> tuple[str, str] | None:
    """Which edge a series counts for: callers' series for traffic inside the mesh, the
    callee's for traffic from outside it (the only proxy that saw it)."""
    reporter, src = s.get("reporter"), _source_id(s)
    if reporter == "source" and src is not None:
        return (src, _destination_id(s))
    if reporter == "destination" and src is None:
        return (UNKNOWN, _destination_id(s))
    return None


def _secured(s: Sample) -> bool:
    if s.get("reporter") == "destination":
        return s.get("connection_security_policy") == "mutual_tls"
    # the caller verified the callee's certificate and presented its own
    return _known(s.get("destination_principal")) and _known(s.get("source_principal"))


def _read(grown: Iterable[Sample]) -> tuple[dict[tuple[str, str], _Acc], dict[str, _Acc]]:
    """Edge and node (inbound, `reporter="destination"`) counts from counter increases."""
    edges: dict[tuple[str, str], _Acc] = defaultdict(_Acc)
    nodes: dict[str, _Acc] = defaultdict(_Acc)
    for s in grown:
        if s.name not in (REQUESTS, DURATION_BUCKET):
            continue
        targets: list[_Acc] = []
        key = _edge_key(s)
        if key is not None:
            targets.append(edges[key])
        if s.get("reporter") == "destination" and _known(s.get("destination_workload")):
            targets.append(nodes[_destination_id(s)])
        for acc in targets:
            if s.name == REQUESTS:
                acc.requests += s.value
                if not s.get("response_code").startswith("5"):
                    acc.ok += s.value
            else:
                acc.buckets[float(s.get("le"))] += s.value
    return edges, nodes


def _services(samples: Iterable[Sample]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for s in samples:
        name = s.get("destination_service_name")
        if s.name == REQUESTS and _known(name) and _known(s.get("destination_workload")):
            out[_destination_id(s)].add(name)
    return out


def _acyclic(ids: Sequence[str], calls: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """The calls less the back edges a depth-first walk meets (a call to a node still on its
    path): what is left has no cycle, and a cycle's first caller stays left of the rest."""
    kept: dict[str, list[str]] = defaultdict(list)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in ids:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(calls.get(root, ())))]
        while stack:
            node, todo = stack[-1]
            nxt = next(todo, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) != 1:  # not a back edge
                kept[node].append(nxt)
                if nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, iter(calls.get(nxt, ()))))
    return kept


def layout(ids: Sequence[str], edges: Iterable[tuple[str, str]]) -> dict[str, tuple[float, float]]:
    """Columns by the longest call chain leading to a node (cycles cut, `_acyclic`), rows in
    the order of `ids`; returns each node's centre."""
    calls: dict[str, list[str]] = defaultdict(list)
    called: set[str] = set()
    for src, dst in edges:
        if src != dst:
            calls[src].append(dst)
            called.add(dst)
    # walk from the nodes nobody calls first, so a cycle is cut where the traffic enters it
    order = [i for i in ids if i not in called] + [i for i in ids if i in called]
    dag = _acyclic(order, calls)
    column = dict.fromkeys(ids, 0)
    indegree: dict[str, int] = defaultdict(int)
    for dsts in dag.values():
        for d in dsts:
            indegree[d] += 1
    ready = [i for i in order if not indegree[i]]
    while ready:  # Kahn's order: a node's column is final before its callees are looked at
        node = ready.pop()
        for d in dag.get(node, ()):
            column[d] = max(column[d], column[node] + 1)
            indegree[d] -= 1
            if not indegree[d]:
                ready.append(d)
    rows: dict[int, int] = defaultdict(int)
    out: dict[str, tuple[float, float]] = {}
    for i in ids:
        c = column[i]
        out[i] = (float(MARGIN_X + c * COLUMN_W), float(MARGIN_Y + rows[c] * ROW_H))
        rows[c] += 1
    return out


def build(
    before: Sequence[Sample] | None,
    after: Sequence[Sample],
    window_s: float | None,
    proxies: Iterable[Proxy] = (),
) -> Graph:
    """The graph of what happened between two scrapes (`before` None: since the proxies
    started, with request counts but no rates)."""
    grown = increase(before, after) if before is not None else list(after)
    window = window_s if before is not None else None
    edge_acc, node_acc = _read(grown)
    edge_acc = {k: a for k, a in edge_acc.items() if a.requests > 0 or before is None}
    replicas: dict[str, int] = defaultdict(int)
    kinds: dict[str, str] = {}
    for p in proxies:
        pid = f"{p.namespace}/{p.workload}"
        replicas[pid] += 1
        kinds[pid] = "gateway" if p.kind == "router" else "workload"
    # every edge between workloads that ever carried a request, even if idle in this window;
    # calls to a service without endpoints (before its first replica was up) only while busy
    seen = {k for k, a in _read(after)[0].items() if a.requests > 0 and not k[1].startswith("svc:")}
    keys = sorted(seen | set(edge_acc))
    # outside callers first: they start the chains
    ids = sorted(
        {*replicas, *node_acc, *(i for k in keys for i in k)}, key=lambda i: (i != UNKNOWN, i)
    )
    places = layout(ids, keys)
    services = _services(after)
    nodes = []
    for i in ids:
        if i == UNKNOWN:
            namespace, name, kind = "", UNKNOWN, "external"
        elif i.startswith("svc:"):
            namespace, name = i[4:].split("/", 1)
            kind = "service"
        else:
            namespace, name = i.split("/", 1)
            kind = kinds.get(i, "workload")
        x, y = places[i]
        nodes.append(
            Node(
                id=i,
                namespace=namespace,
                name=name,
                kind=kind,
                replicas=replicas.get(i, 0),
                services=tuple(sorted(services.get(i, ()))),
                inbound=node_acc[i].signals(window) if i in node_acc else _Acc().signals(window),
                x=x,
                y=y,
            )
        )
    secured = _secured_edges(after)
    edges = tuple(
        Edge(src, dst, (edge_acc.get((src, dst)) or _Acc()).signals(window), (src, dst) in secured)
        for src, dst in keys
    )
    width = max((n.x for n in nodes), default=0.0) + MARGIN_X
    height = max((n.y for n in nodes), default=0.0) + MARGIN_Y
    return Graph(tuple(nodes), edges, width, height, window)


def _secured_edges(samples: Iterable[Sample]) -> set[tuple[str, str]]:
    """Edges whose every request so far went over mutual TLS."""
    plain: set[tuple[str, str]] = set()
    secure: set[tuple[str, str]] = set()
    for s in samples:
        key = _edge_key(s) if s.name == REQUESTS and s.value > 0 else None
        if key is not None:
            (secure if _secured(s) else plain).add(key)
    return secure - plain
