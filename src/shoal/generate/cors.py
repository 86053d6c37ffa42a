"""CORS (VirtualService `corsPolicy`) as Envoy's CORS filter, configured per route.

The filter sits on the caller's outbound listener before fault injection (a preflight is
answered even when faults are injected); each route with a `corsPolicy` carries a
`CorsPolicy` in `typed_per_filter_config`, translated as Istio's TranslateCORSPolicy:
origins are string matchers, lists are joined with ",", `maxAge` is whole seconds, and
preflights from origins that do not match are forwarded unless `unmatchedPreflights: IGNORE`.
"""

from __future__ import annotations

from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.type.matcher.v3 import regex_pb2, string_pb2
from envoy.type.v3 import percent_pb2

from shoal.api.virtualservice import CorsPolicy, StringMatch

CORS_FILTER = "envoy.filters.http.cors"


def _matcher(m: StringMatch) -> string_pb2.StringMatcher:
    if m.exact is not None:
        return string_pb2.StringMatcher(exact=m.exact)
    if m.prefix is not None:
        return string_pb2.StringMatcher(prefix=m.prefix)
    return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=m.regex or ""))


def cors_policy(policy: CorsPolicy) -> cors_pb2.CorsPolicy:
    out = cors_pb2.CorsPolicy(
        allow_methods=",".join(policy.allow_methods),
        allow_headers=",".join(policy.allow_headers),
        expose_headers=",".join(policy.expose_headers),
    )
    if policy.allow_origins:
        out.allow_origin_string_match.extend(_matcher(m) for m in policy.allow_origins)
    else:
        out.allow_origin_string_match.extend(
            string_pb2.StringMatcher(exact=o) for o in policy.allow_origin
        )
    out.filter_enabled.default_value.CopyFrom(
        percent_pb2.FractionalPercent(
            numerator=100, denominator=percent_pb2.FractionalPercent.HUNDRED
        )
    )
    out.forward_not_matching_preflights.value = policy.unmatched_preflights != "IGNORE"
    if policy.allow_credentials is not None:
        out.allow_credentials.value = policy.allow_credentials
    if policy.max_age is not None:
        out.max_age = str(int(policy.max_age))
    return out


def cors_filter_config() -> cors_pb2.Cors:
    """The listener-level config: CORS only where a route has a policy."""
    return cors_pb2.Cors()
