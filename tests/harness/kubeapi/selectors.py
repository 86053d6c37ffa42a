"""Label and field selectors: the query-string syntax and the LabelSelector object.

Label selectors take the full set-based grammar of apimachinery's ``labels.Parse``:
``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a``, ``!a``, ``a>1``, ``a<1``,
ANDed with commas. Field selectors take ``f=v``, ``f==v``, ``f!=v`` on the fields the real server
indexes (``metadata.name``, ``metadata.namespace`` everywhere, a few more per kind); an
unsupported field is a 400, as on the real server.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ApiError

Requirement = Callable[[Mapping[str, str]], bool]

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_TOKEN = re.compile(
    r"\s*(?:(?P<op>==|!=|=|\(|\)|,|!|>|<)|(?P<word>[^\s=!(),<>]+))",
)

FIELDS_BY_KIND: dict[str, frozenset[str]] = {
    "Pod": frozenset(
        {"spec.nodeName", "spec.serviceAccountName", "status.phase", "status.podIP",
         "spec.restartPolicy", "spec.schedulerName"}
    ),
    "Event": frozenset(
        {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
         "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
         "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type",
         "regarding.kind", "regarding.name", "regarding.namespace"}
    ),
    "Secret": frozenset({"type"}),
    "Namespace": frozenset({"status.phase"}),
}  # fmt: skip


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ApiError.bad_request(f"unable to parse requirement: {text!r}")
        out.append(m.group("op") or m.group("word"))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def _check_key(key: str, text: str) -> str:
    if not re.fullmatch(_KEY, key) or len(key.rsplit("/", 1)[-1]) > 63:
        raise ApiError.bad_request(f"unable to parse requirement: invalid label key {key!r}")
    return key


def _check_value(value: str) -> str:
    if not re.fullmatch(_VALUE, value) or len(value) > 63:
        raise ApiError.bad_request(f"unable to parse requirement: invalid label value {value!r}")
    return value


def parse_label_selector(text: str | None) -> Requirement:
    """Parse ``labelSelector``; raises ApiError(400) on bad syntax."""
    if not text or not text.strip():
        return lambda labels: True
    toks = _tokens(text)
    reqs: list[Requirement] = []
    i = 0

    def take() -> str:
        nonlocal i
        if i >= len(toks):
            raise ApiError.bad_request(f"unable to parse requirement: {text!r} ends early")
        i += 1
        return toks[i - 1]

    while i < len(toks):
        tok = take()
        if tok == "!":
            key = _check_key(take(), text)
            reqs.append(lambda lb, k=key: k not in lb)
        else:
            key = _check_key(tok, text)
            nxt = toks[i] if i < len(toks) else ","
            if nxt == ",":
                reqs.append(lambda lb, k=key: k in lb)
            elif nxt in ("=", "==", "!="):
                take()
                value = _check_value(take() if i < len(toks) and toks[i] != "," else "")
                if nxt == "!=":
                    reqs.append(lambda lb, k=key, v=value: lb.get(k) != v)
                else:
                    reqs.append(lambda lb, k=key, v=value: lb.get(k) == v)
            elif nxt in (">", "<"):
                take()
                raw = take()
                try:
                    bound = int(raw)
                except ValueError:
                    raise ApiError.bad_request(
                        f"unable to parse requirement: {raw!r} is not an integer"
                    ) from None
                reqs.append(_compare(key, bound, nxt))
            elif nxt in ("in", "notin"):
                take()
                if take() != "(":
                    raise ApiError.bad_request(f"unable to parse requirement: {text!r}: want (")
                values: set[str] = set()
                while True:
                    t = take()
                    if t == ")":
                        break
                    if t == ",":
                        continue
                    values.add(_check_value(t))
                if nxt == "in":
                    reqs.append(lambda lb, k=key, vs=frozenset(values): lb.get(k) in vs)
                else:
                    reqs.append(lambda lb, k=key, vs=frozenset(values): lb.get(k) not in vs)
            else:
                raise ApiError.bad_request(f"unable to parse requirement: {text!r} at {nxt!r}")
        if i < len(toks):
            if toks[i] != ",":
                raise ApiError.bad_request(f"unable to parse requirement: {text!r}: want ,")
            i += 1
            if i == len(toks):
                raise ApiError.bad_request(f"unable to parse requirement: {text!r} ends with ,")
    return lambda labels: all(r(labels) for r in reqs)


def _compare(key: str, bound: int, op: str) -> Requirement:
    def check(labels: Mapping[str, str]) -> bool:
        try:
            value = int(labels[key])
        except (KeyError, ValueError):
            return False
        return value > bound if op == ">" else value < bound

    return check


def label_selector_object(selector: Mapping[str, Any] | None) -> Requirement:
    """A metav1.LabelSelector (matchLabels + matchExpressions); None matches everything."""
    if selector is None:
        return lambda labels: True
    reqs: list[Requirement] = []
    for k, v in (selector.get("matchLabels") or {}).items():
        reqs.append(lambda lb, k=k, v=v: lb.get(k) == v)
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], frozenset(expr.get("values") or ())
        if op == "In":
            reqs.append(lambda lb, k=key, vs=values: lb.get(k) in vs)
        elif op == "NotIn":
            reqs.append(lambda lb, k=key, vs=values: lb.get(k) not in vs)
        elif op == "Exists":
            reqs.append(lambda lb, k=key: k in lb)
        elif op == "DoesNotExist":
            reqs.append(lambda lb, k=key: k not in lb)
        else:
            raise ApiError.invalid(f"{op!r} is not a valid label selector operator")
    return lambda labels: all(r(labels) for r in reqs)


def _field(obj: Mapping[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    return str(cur)


def parse_field_selector(text: str | None, kind: str) -> Callable[[Mapping[str, Any]], bool]:
    """Parse ``fieldSelector`` for objects of ``kind``; raises ApiError(400)."""
    if not text or not text.strip():
        return lambda obj: True
    allowed = FIELDS_BY_KIND.get(kind, frozenset())
    reqs: list[Callable[[Mapping[str, Any]], bool]] = []
    for raw in text.split(","):
        term = raw.strip()
        if not term:
            continue
        m = re.fullmatch(r"([^=!]+?)\s*(==|!=|=)\s*(.*)", term)
        if not m:
            raise ApiError.bad_request(f"invalid selector: {text!r}; can't understand {term!r}")
        path, op, value = m.groups()
        if path not in ("metadata.name", "metadata.namespace") and path not in allowed:
            raise ApiError.bad_request(
                f'"{path}" is not a known field selector: only "metadata.name", '
                f'"metadata.namespace"' + "".join(f', "{f}"' for f in sorted(allowed))
            )
        if op == "!=":
            reqs.append(lambda o, p=path, v=value: _field(o, p) != v)
        else:
            reqs.append(lambda o, p=path, v=value: _field(o, p) == v)
    return lambda obj: all(r(obj) for r in reqs)
