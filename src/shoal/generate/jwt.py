"""RequestAuthentication as `envoy.filters.http.jwt_authn` on a sidecar's inbound listener.

Istio's semantics (pilot/pkg/security/authn, `BuildJwtFilter`): every `jwtRules` entry of
every RequestAuthentication selecting the workload is one provider; the requirement is "any
provider, or no token at all" (`requires_any` with `allow_missing`), so a request with an
invalid, expired or unknown-issuer token gets 401 and one without a token passes (an
AuthorizationPolicy with `requestPrincipals` then refuses it). The verified payload is put
in the dynamic metadata of the filter under `payload`, where authz.py matches
`requestPrincipals` (`iss/sub`) and `request.auth.claims[...]`.

Keys: `jwks` inline, or the contents of a `file:` or `http(s)` `jwksUri` as the control plane
read or fetched them (`snapshot.files`). A URI whose keys it has not got (an unreadable file,
an issuer not reached yet) gets Istio's fallback: a key nobody holds, so every token is
refused.
"""

from __future__ import annotations

import json

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2 as jwt_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from shoal.api import Resource
from shoal.api.requestauthentication import JwtRule, RequestAuthenticationSpec
from shoal.api.targetref import TargetedPolicy
from shoal.generate.peerauth import ROOT_NAMESPACE
from shoal.model import MeshSnapshot, Proxy

FILTER_NAME = "envoy.filters.http.jwt_authn"
PAYLOAD_KEY = "payload"

# Istio's fallback when keys cannot be had: a well-formed RSA key whose private half was
# never kept, so no token verifies.
FAKE_JWKS = json.dumps(
    {
        "keys": [
            {
                "kty": "RSA",
                "kid": "shoal-unresolvable",
                "e": "AQAB",
                "n": "yWQplZLSmE1OhuNFL6HH6jZ1W_mZY5J5JpBTOa4KfEN0aFX6QGrjzTM9-pmcMWso6SY2E7J8"
                "goxP-rwVol3L-_tXKZMMruwdIZTKrmvHifS4fpwvjgF0_SJJcL6fvx3vTxe_GLZcrXWlUnWRGD"
                "vKA2qXvEM7MWSo3NAa8umpOzH98FGqzywyMjCR1lOuXW-wk-6pIb0dvGXEDRBSz92na8EwvOEf"
                "QjGTOY2BPwl5e08vIRED_4adX02_HF9u7RqSqQebIA0lZSJVD9KfzSxIt3rOfHgKXD9zetHJSk"
                "JHC1XzMNxjyPukUIug0ZYyhSmn-m-wQs9GwWDbE7__CqR4Aw",
            }
        ]
    },
    sort_keys=True,
)


def selects(res: Resource, selector_labels: dict[str, str] | None, proxy: Proxy) -> bool:
    """Istio's scoping for security policies: root namespace applies mesh-wide, others to
    their namespace; a selector narrows to workloads with those labels. A policy with
    `targetRef(s)` applies to the named gateways' proxies only (api/targetref.py)."""
    spec = res.spec
    if isinstance(spec, TargetedPolicy) and spec.targets():
        return any(
            (ref.namespace or res.meta.namespace) == proxy.namespace
            and all(proxy.labels.get(k) == v for k, v in ref.labels().items())
            for ref in spec.targets()
        )
    if res.meta.namespace not in (proxy.namespace, ROOT_NAMESPACE):
        return False
    return all(proxy.labels.get(k) == v for k, v in (selector_labels or {}).items())


def jwt_rules(snapshot: MeshSnapshot, proxy: Proxy) -> list[JwtRule]:
    out: list[JwtRule] = []
    for res in snapshot.request_authentications:
        assert isinstance(res.spec, RequestAuthenticationSpec)
        selector = res.spec.selector.match_labels if res.spec.selector else None
        if selects(res, selector, proxy):
            out.extend(res.spec.jwt_rules)
    return out


def jwks_for(rule: JwtRule, snapshot: MeshSnapshot) -> str:
    if rule.jwks:
        return rule.jwks
    if rule.jwks_file is not None or rule.jwks_url is not None:
        return snapshot.files.get(rule.jwks_uri, FAKE_JWKS)
    return FAKE_JWKS


def provider(rule: JwtRule, snapshot: MeshSnapshot) -> jwt_pb2.JwtProvider:
    out = jwt_pb2.JwtProvider(
        issuer=rule.issuer,
        audiences=rule.audiences,
        forward=rule.forward_original_token,
        payload_in_metadata=PAYLOAD_KEY,
        local_jwks=base_pb2.DataSource(inline_string=jwks_for(rule, snapshot)),
        from_params=rule.from_params,
        from_cookies=rule.from_cookies,
        forward_payload_header=rule.output_payload_to_header,
    )
    for header in rule.from_headers:
        out.from_headers.add(name=header.name, value_prefix=header.prefix)
    for claim in rule.output_claim_to_headers:
        out.claim_to_headers.add(header_name=claim.header, claim_name=claim.claim)
    return out


def jwt_config(rules: list[JwtRule], snapshot: MeshSnapshot) -> jwt_pb2.JwtAuthentication:
    config = jwt_pb2.JwtAuthentication()
    any_of = jwt_pb2.JwtRequirementOrList()
    for i, rule in enumerate(rules):
        name = f"origins-{i}"
        config.providers[name].CopyFrom(provider(rule, snapshot))
        any_of.requirements.add(provider_name=name)
    any_of.requirements.add().allow_missing.SetInParent()
    config.rules.add(
        match=rc.RouteMatch(prefix="/"), requires=jwt_pb2.JwtRequirement(requires_any=any_of)
    )
    return config


def http_filters(snapshot: MeshSnapshot, proxy: Proxy) -> list[hcm_pb2.HttpFilter]:
    """The JWT filter for `proxy`'s inbound listener, if a RequestAuthentication selects it."""
    rules = jwt_rules(snapshot, proxy)
    if not rules:
        return []
    out = hcm_pb2.HttpFilter(name=FILTER_NAME)
    out.typed_config.Pack(jwt_config(rules, snapshot))
    return [out]
