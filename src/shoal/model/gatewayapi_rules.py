"""One Gateway API route rule as Istio VirtualService `http` entries (plain data, validated by
the VirtualService model in model/gatewayapi.py).

Gateway API semantics kept on the way:
- `PathPrefix /a` matches `/a` and `/a/...` but not `/ab`: it becomes two entries, exact `/a`
  and prefix `/a/`, each with its own prefix rewrite (`ReplacePrefixMatch`).
- Weights are any non-negative integers; Istio's add up to 100 (largest remainder).
- Entries are ordered by the spec's precedence (exact path, longest path, method, most
  headers, most query parameters; then route age and name, then rule order), across every
  route bound to the same host (`precedence`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from shoal.api.gatewayapi.attach import backend_host
from shoal.api.gatewayapi.common import BackendObjectReference, BackendRef
from shoal.api.gatewayapi.grpcroute import GRPCRouteMatch, GRPCRouteRule
from shoal.api.gatewayapi.httproute import (
    HeaderModifier,
    HTTPRouteFilter,
    HTTPRouteMatch,
    HTTPRouteRule,
    PathModifier,
)

Json = dict[str, Any]
_PATH_RANK = MappingProxyType({"Exact": 3, "PathPrefix": 2, "RegularExpression": 1})


@dataclass(frozen=True)
class Entry:
    """One Istio http route and the key that orders it among a host's (smaller first)."""

    order: tuple[Any, ...]
    route: Json


def _weights(refs: Sequence[BackendRef]) -> list[int]:
    total = sum(r.weight for r in refs)
    exact = [r.weight * 100 / total for r in refs]
    out = [int(x) for x in exact]
    # largest remainder: the rounding error goes to the largest fractions
    for i in sorted(range(len(refs)), key=lambda i: exact[i] - out[i], reverse=True)[
        : 100 - sum(out)
    ]:
        out[i] += 1
    return out


def _destination(ref: BackendObjectReference, namespace: str) -> Json:
    dest: Json = {"host": backend_host(ref, namespace)}
    if ref.port is not None:
        dest["port"] = {"number": ref.port}
    return dest


def _header_ops(modifier: HeaderModifier) -> Json:
    ops: Json = {}
    if modifier.set:
        ops["set"] = {h.name: h.value for h in modifier.set}
    if modifier.add:
        ops["add"] = {h.name: h.value for h in modifier.add}
    if modifier.remove:
        ops["remove"] = list(modifier.remove)
    return ops


def _string_match(kind: str, value: str) -> Json:
    return {"regex": value} if kind == "RegularExpression" else {"exact": value}


def _http_matches(match: HTTPRouteMatch) -> list[tuple[Json, str, tuple[Any, ...]]]:
    """Istio matches of one Gateway API match: (match, the prefix it matched or "", order)."""
    base: Json = {}
    if match.headers:
        base["headers"] = {h.name.lower(): _string_match(h.type, h.value) for h in match.headers}
    if match.query_params:
        base["queryParams"] = {q.name: _string_match(q.type, q.value) for q in match.query_params}
    if match.method is not None:
        base["method"] = {"exact": match.method}
    path = match.path
    kind, value = (path.type, path.value) if path is not None else ("PathPrefix", "/")
    rank = (
        -_PATH_RANK[kind],
        -len(value),
        -(match.method is not None),
        -len(match.headers),
        -len(match.query_params),
    )
    if kind == "Exact":
        return [({**base, "uri": {"exact": value}}, "", rank)]
    if kind == "RegularExpression":
        return [({**base, "uri": {"regex": value}}, "", rank)]
    prefix = value.rstrip("/")
    if not prefix:
        return [({**base, "uri": {"prefix": "/"}}, "/", rank)]
    return [
        ({**base, "uri": {"exact": prefix}}, prefix, rank),
        ({**base, "uri": {"prefix": prefix + "/"}}, prefix + "/", rank),
    ]


def _grpc_matches(match: GRPCRouteMatch) -> list[tuple[Json, str, tuple[Any, ...]]]:
    out: Json = {}
    if match.headers:
        out["headers"] = {h.name.lower(): _string_match(h.type, h.value) for h in match.headers}
    method = match.method
    rank: tuple[Any, ...] = (0, 0, -len(match.headers))
    if method is not None:
        service, name = method.service, method.method
        if method.type == "Exact":
            if service and name:
                out["uri"] = {"exact": f"/{service}/{name}"}
            elif service:
                out["uri"] = {"prefix": f"/{service}/"}
            else:
                out["uri"] = {"regex": f"/[^/]+/{name}"}
        else:
            out["uri"] = {"regex": f"/{service or '[^/]+'}/{name or '[^/]+'}"}
        rank = (-(2 if service else 0) - (1 if name else 0), 0, -len(match.headers))
    return [(out, "", rank)]


def _replaced_prefix(modifier: PathModifier, matched: str) -> str:
    # `/a` -> `/b` turns `/a/x` into `/b/x`: the prefix `/a/` becomes `/b/` (or `/`)
    target = modifier.value.rstrip("/")
    if matched.endswith("/"):
        return target + "/"
    return target or "/"


def _actions(filters: Sequence[HTTPRouteFilter], matched: str, namespace: str) -> tuple[Json, bool]:
    """The Istio route fields of a rule's filters, and whether it redirects."""
    out: Json = {}
    headers: Json = {}
    redirects = False
    for f in filters:
        if f.request_header_modifier is not None:
            headers["request"] = _header_ops(f.request_header_modifier)
        elif f.response_header_modifier is not None:
            headers["response"] = _header_ops(f.response_header_modifier)
        elif f.request_redirect is not None:
            r = f.request_redirect
            redirect: Json = {"redirectCode": r.status_code}
            if r.scheme:
                redirect["scheme"] = r.scheme
            if r.hostname:
                redirect["authority"] = r.hostname
            if r.port:
                redirect["port"] = r.port
            if r.path is not None and r.path.type == "ReplaceFullPath":
                redirect["uri"] = r.path.value
            elif r.path is not None:
                redirect["prefixRewrite"] = _replaced_prefix(r.path, matched or "/")
            out["redirect"] = redirect
            redirects = True
        elif f.url_rewrite is not None:
            rewrite: Json = {}
            if f.url_rewrite.hostname:
                rewrite["authority"] = f.url_rewrite.hostname
            path = f.url_rewrite.path
            if path is not None and path.type == "ReplaceFullPath":
                rewrite["uriRegexRewrite"] = {"match": "^/.*", "rewrite": path.value}
            elif path is not None:
                rewrite["uri"] = _replaced_prefix(path, matched or "/")
            if rewrite:
                out["rewrite"] = rewrite
        elif f.request_mirror is not None:
            mirror: Json = {"destination": _destination(f.request_mirror.backend_ref, namespace)}
            if f.request_mirror.percent is not None:
                mirror["percentage"] = {"value": float(f.request_mirror.percent)}
            out.setdefault("mirrors", []).append(mirror)
    if headers:
        out["headers"] = headers
    return out, redirects


def rule_entries(
    rule: HTTPRouteRule | GRPCRouteRule,
    namespace: str,
    route_order: tuple[Any, ...],
    rule_index: int,
    name: str,
) -> list[Entry]:
    """The Istio http entries of one rule (one per Istio match), in no particular order."""
    if isinstance(rule, HTTPRouteRule):
        matches = [m for match in rule.matches or [HTTPRouteMatch()] for m in _http_matches(match)]
    else:
        matches = [m for match in rule.matches or [GRPCRouteMatch()] for m in _grpc_matches(match)]
    out: list[Entry] = []
    for j, (match, matched, rank) in enumerate(matches):
        route, redirects = _actions(rule.filters, matched, namespace)
        route["name"] = f"{name}.{rule_index}.{j}"
        if match:
            route["match"] = [match]
        if not redirects:
            live = [r for r in rule.backend_refs if r.weight > 0]
            if live:
                weights = _weights(live)
                route["route"] = [
                    {"destination": _destination(r, namespace), "weight": w}
                    for r, w in zip(live, weights, strict=True)
                ]
            else:
                # the spec: a rule with no usable backend answers 500
                route.pop("mirrors", None)
                route["directResponse"] = {"status": 500}
        timeouts = getattr(rule, "timeouts", None)
        if timeouts is not None and "route" in route:
            if timeouts.request is not None:
                route["timeout"] = timeouts.request
            if timeouts.backend_request is not None:
                route["retries"] = {"attempts": 2, "perTryTimeout": timeouts.backend_request}
        out.append(Entry((*rank, *route_order, rule_index, j), route))
    return out
