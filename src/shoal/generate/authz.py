"""AuthorizationPolicy as `envoy.filters.http.rbac` on a sidecar's inbound listener.

Istio's evaluation (pilot/pkg/security/authz/builder): CUSTOM first (not implemented), then
DENY, then ALLOW, each a separate RBAC filter in that order (AUDIT, which only logs, goes
first). A request matching any DENY rule is refused; otherwise, if any ALLOW policy applies
to the workload, it must match one of their rules (so an ALLOW policy without rules denies
everything); with no ALLOW policy everything left is allowed. Refusals are 403
`RBAC: access denied`.

One rule is one Envoy RBAC policy `ns[NS]-policy[NAME]-rule[I]`: its `from` sources (any of
them; each source's fields all, each field any of its values) and `when` conditions make the
principals, its `to` operations the permissions. Istio's string forms: `*` alone means
"present", `prefix*` and `*suffix` match ends; principals get `spiffe://` prepended and are
the peer certificate's URI SAN (so they need mTLS); namespaces match `.*/ns/NS/.*` of it;
`requestPrincipals` are `iss/sub` of the JWT payload jwt.py put in metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import MappingProxyType

from envoy.config.core.v3 import address_pb2
from envoy.config.rbac.v3 import rbac_pb2 as rbac
from envoy.config.rbac.v3.rbac_pb2 import Permission as Perm
from envoy.config.rbac.v3.rbac_pb2 import Principal as Id
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as rbac_filter
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.type.matcher.v3 import metadata_pb2, path_pb2, regex_pb2, string_pb2, value_pb2

from shoal.api import Resource
from shoal.api.authorizationpolicy import (
    AuthorizationPolicySpec,
    Condition,
    Operation,
    Rule,
    Source,
    split_key,
)
from shoal.generate.jwt import FILTER_NAME as JWT_FILTER
from shoal.generate.jwt import PAYLOAD_KEY, selects
from shoal.model import MeshSnapshot, Proxy

FILTER_NAME = "envoy.filters.http.rbac"
_ACTIONS = MappingProxyType(
    {"ALLOW": rbac.RBAC.ALLOW, "DENY": rbac.RBAC.DENY, "AUDIT": rbac.RBAC.LOG}
)


# ---------------------------------------------------------------- string forms
def string_match(
    value: str, *, ignore_case: bool = False, prefix: str = ""
) -> string_pb2.StringMatcher:
    """Istio's value forms: exact, `prefix*`, `*suffix`, `*` (non-empty)."""
    if value == "*":
        # no ignore_case: Envoy refuses it beside safe_regex (`hosts: ["*"]` was NACKed)
        return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=".+"))
    if value.endswith("*"):
        return string_pb2.StringMatcher(prefix=prefix + value[:-1], ignore_case=ignore_case)
    if value.startswith("*"):
        return string_pb2.StringMatcher(suffix=value[1:], ignore_case=ignore_case)
    return string_pb2.StringMatcher(exact=prefix + value, ignore_case=ignore_case)


def _principal_name(value: str) -> Id:
    prefix = "" if value == "*" else "spiffe://"
    return Id(
        authenticated=rbac.Principal.Authenticated(
            principal_name=string_match(value, prefix=prefix)
        )
    )


def _namespace(value: str) -> Id:
    regex = ".*/ns/.+/.*" if value == "*" else f".*/ns/{_quote(value)}/.*"
    return Id(
        authenticated=rbac.Principal.Authenticated(
            principal_name=string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=regex))
        )
    )


def _quote(text: str) -> str:
    return "".join("\\" + c if c in r".^$*+?()[]{}|\\" else c for c in text)


def _cidr(value: str) -> address_pb2.CidrRange:
    address, _, length = value.partition("/")
    out = address_pb2.CidrRange(address_prefix=address)
    out.prefix_len.value = int(length) if length else (128 if ":" in address else 32)
    return out


def _payload(path: Sequence[str], matcher: value_pb2.ValueMatcher) -> metadata_pb2.MetadataMatcher:
    return metadata_pb2.MetadataMatcher(
        filter=JWT_FILTER,
        path=[metadata_pb2.MetadataMatcher.PathSegment(key=k) for k in (PAYLOAD_KEY, *path)],
        value=matcher,
    )


def _claim(name: str, value: str) -> Id:
    """A claim equal to `value`, or a list claim containing it (Istio matches both)."""
    as_string = value_pb2.ValueMatcher(string_match=string_match(value))
    in_list = value_pb2.ValueMatcher(list_match=value_pb2.ListMatcher(one_of=as_string))
    return _any_id(
        [Id(metadata=_payload([name], as_string)), Id(metadata=_payload([name], in_list))]
    )


def _request_principal(value: str) -> Id:
    if value == "*":
        present = value_pb2.ValueMatcher(present_match=True)
        return Id(metadata=_payload(["iss"], present))
    iss, _, sub = value.partition("/")
    parts = [Id(metadata=_payload(["iss"], value_pb2.ValueMatcher(string_match=string_match(iss))))]
    if sub:
        parts.append(
            Id(metadata=_payload(["sub"], value_pb2.ValueMatcher(string_match=string_match(sub))))
        )
    return _all_ids(parts)


def _header(name: str, value: str, *, ignore_case: bool = False) -> rc.HeaderMatcher:
    return rc.HeaderMatcher(name=name, string_match=string_match(value, ignore_case=ignore_case))


def _path(value: str) -> path_pb2.PathMatcher:
    return path_pb2.PathMatcher(path=string_match(value))


# ---------------------------------------------------------------- combinators
def _any_id(items: list[Id]) -> Id:
    return items[0] if len(items) == 1 else Id(or_ids=rbac.Principal.Set(ids=items))


def _all_ids(items: list[Id]) -> Id:
    if not items:
        return Id(any=True)
    return items[0] if len(items) == 1 else Id(and_ids=rbac.Principal.Set(ids=items))


def _any_perm(items: list[Perm]) -> Perm:
    return items[0] if len(items) == 1 else Perm(or_rules=rbac.Permission.Set(rules=items))


def _all_perms(items: list[Perm]) -> Perm:
    if not items:
        return Perm(any=True)
    return items[0] if len(items) == 1 else Perm(and_rules=rbac.Permission.Set(rules=items))


def _field_ids(values: list[str], negated: list[str], make: Callable[[str], Id]) -> list[Id]:
    out = []
    if values:
        out.append(_any_id([make(v) for v in values]))
    if negated:
        out.append(Id(not_id=_any_id([make(v) for v in negated])))
    return out


def _field_perms(values: list[str], negated: list[str], make: Callable[[str], Perm]) -> list[Perm]:
    out = []
    if values:
        out.append(_any_perm([make(v) for v in values]))
    if negated:
        out.append(Perm(not_rule=_any_perm([make(v) for v in negated])))
    return out


# ---------------------------------------------------------------- rule parts
def _source(src: Source) -> Id:
    parts = [
        *_field_ids(src.principals, src.not_principals, _principal_name),
        *_field_ids(src.request_principals, src.not_request_principals, _request_principal),
        *_field_ids(src.namespaces, src.not_namespaces, _namespace),
        *_field_ids(src.ip_blocks, src.not_ip_blocks, lambda v: Id(direct_remote_ip=_cidr(v))),
        *_field_ids(
            src.remote_ip_blocks, src.not_remote_ip_blocks, lambda v: Id(remote_ip=_cidr(v))
        ),
    ]
    return _all_ids(parts)


def _operation(op: Operation) -> Perm:
    parts = [
        *_field_perms(
            op.hosts,
            op.not_hosts,
            lambda v: Perm(header=_header(":authority", v, ignore_case=True)),
        ),
        *_field_perms(op.ports, op.not_ports, lambda v: Perm(destination_port=int(v))),
        *_field_perms(op.methods, op.not_methods, lambda v: Perm(header=_header(":method", v))),
        *_field_perms(op.paths, op.not_paths, lambda v: Perm(url_path=_path(v))),
    ]
    return _all_perms(parts)


def _condition(cond: Condition) -> tuple[list[Id], list[Perm]]:
    """A `when` condition: principal-side (who/what request) or permission-side (where)."""
    name, arg = split_key(cond.key)
    if name == "destination.port":
        return [], _field_perms(
            cond.values, cond.not_values, lambda v: Perm(destination_port=int(v))
        )
    if name == "connection.sni":
        return [], _field_perms(
            cond.values, cond.not_values, lambda v: Perm(requested_server_name=string_match(v))
        )
    makers: dict[str, Callable[[str], Id]] = {
        "request.headers": lambda v: Id(header=_header(arg, v)),
        "source.ip": lambda v: Id(direct_remote_ip=_cidr(v)),
        "remote.ip": lambda v: Id(remote_ip=_cidr(v)),
        "source.namespace": _namespace,
        "source.principal": _principal_name,
        "request.auth.principal": _request_principal,
        "request.auth.claims": lambda v: _claim(arg, v),
        "request.auth.audiences": lambda v: _claim("aud", v),
        "request.auth.presenter": lambda v: _claim("azp", v),
    }
    return _field_ids(cond.values, cond.not_values, makers[name]), []


def rule_policy(rule: Rule) -> rbac.Policy:
    ids: list[Id] = []
    perms: list[Perm] = []
    if rule.from_:
        ids.append(_any_id([_source(f.source) for f in rule.from_]))
    if rule.to:
        perms.append(_any_perm([_operation(t.operation) for t in rule.to]))
    for cond in rule.when:
        more_ids, more_perms = _condition(cond)
        ids += more_ids
        perms += more_perms
    return rbac.Policy(permissions=[_all_perms(perms)], principals=[_all_ids(ids)])


# ---------------------------------------------------------------- filters
def policies_for(snapshot: MeshSnapshot, proxy: Proxy) -> list[Resource]:
    """AuthorizationPolicies that apply to `proxy`'s workload (mesh-wide and its namespace)."""
    out = []
    for res in snapshot.authorization_policies:
        assert isinstance(res.spec, AuthorizationPolicySpec)
        selector = res.spec.selector.match_labels if res.spec.selector else None
        if selects(res, selector, proxy):
            out.append(res)
    return out


def rbac_config(action: str, policies: list[Resource]) -> rbac_filter.RBAC:
    rules = rbac.RBAC(action=_ACTIONS[action])
    for res in policies:
        assert isinstance(res.spec, AuthorizationPolicySpec)
        for i, rule in enumerate(res.spec.rules):
            name = f"ns[{res.meta.namespace}]-policy[{res.meta.name}]-rule[{i}]"
            rules.policies[name].CopyFrom(rule_policy(rule))
    return rbac_filter.RBAC(rules=rules)


def http_filters(snapshot: MeshSnapshot, proxy: Proxy) -> list[hcm_pb2.HttpFilter]:
    """AUDIT, DENY, ALLOW RBAC filters for `proxy`'s inbound listener, in Istio's order."""
    applicable = policies_for(snapshot, proxy)
    out = []
    for action in ("AUDIT", "DENY", "ALLOW"):
        chosen = [r for r in applicable if getattr(r.spec, "action", "") == action]
        if not chosen:
            continue
        config = rbac_config(action, chosen)
        if action != "ALLOW" and not config.rules.policies:
            continue  # DENY/AUDIT without rules match nothing; an empty ALLOW denies all
        f = hcm_pb2.HttpFilter(name=FILTER_NAME)
        f.typed_config.Pack(config)
        out.append(f)
    return out
