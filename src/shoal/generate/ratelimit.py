"""Local rate limiting: `LocalRateLimit` as `envoy.filters.http.local_ratelimit` on the
inbound listener of the sidecars it selects.

A LocalRateLimit applies to sidecars in its namespace whose labels match its
`workloadSelector` (all of the namespace without one); when several match, the first by name
wins. The filter's `filter_enabled` and `filter_enforced` default to 0 % in Envoy (the
limiter would count but never refuse), so both are set to 100 %. Refused requests get 429
and `x-local-rate-limit: true`.
"""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.http.local_ratelimit.v3 import local_rate_limit_pb2 as lrl_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.type.v3 import percent_pb2, token_bucket_pb2

from shoal.api import Resource
from shoal.api.ratelimit import LocalRateLimitSpec
from shoal.model import MeshSnapshot, Proxy

FILTER_NAME = "envoy.filters.http.local_ratelimit"
HEADER = "x-local-rate-limit"


def rate_limit_for(snapshot: MeshSnapshot, proxy: Proxy) -> Resource | None:
    for res in snapshot.rate_limits:
        assert isinstance(res.spec, LocalRateLimitSpec)
        if res.meta.namespace != proxy.namespace:
            continue
        selector = res.spec.workload_selector
        if selector is None or all(proxy.labels.get(k) == v for k, v in selector.labels.items()):
            return res
    return None


def _all() -> base_pb2.RuntimeFractionalPercent:
    return base_pb2.RuntimeFractionalPercent(
        default_value=percent_pb2.FractionalPercent(
            numerator=100, denominator=percent_pb2.FractionalPercent.HUNDRED
        )
    )


def local_rate_limit(spec: LocalRateLimitSpec, stat_prefix: str) -> lrl_pb2.LocalRateLimit:
    bucket = token_bucket_pb2.TokenBucket(max_tokens=spec.max_tokens)
    bucket.tokens_per_fill.value = spec.tokens_per_fill
    bucket.fill_interval.FromNanoseconds(int(spec.fill_interval * 1e9))
    config = lrl_pb2.LocalRateLimit(
        stat_prefix=stat_prefix,
        token_bucket=bucket,
        filter_enabled=_all(),
        filter_enforced=_all(),
    )
    config.response_headers_to_add.append(
        base_pb2.HeaderValueOption(
            header=base_pb2.HeaderValue(key=HEADER, value="true"),
            append_action=base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD,
        )
    )
    return config


def http_filters(snapshot: MeshSnapshot, proxy: Proxy) -> list[hcm_pb2.HttpFilter]:
    """The rate limit filter for `proxy`'s inbound listener, if a LocalRateLimit selects it."""
    res = rate_limit_for(snapshot, proxy)
    if res is None:
        return []
    assert isinstance(res.spec, LocalRateLimitSpec)
    out = hcm_pb2.HttpFilter(name=FILTER_NAME)
    out.typed_config.Pack(local_rate_limit(res.spec, "inbound_local_rate_limit"))
    return [out]
