"""Retry policies of outbound routes, translated as Istio does (pilot route/retry/retry.go).

* No `retries` on the route: the mesh default, `MeshConfig.defaultHttpRetryPolicy`, or when
  that is absent Istio's built-in default (2 retries on connect-failure, refused-stream,
  unavailable, cancelled and 503, never twice on the same host).
* `attempts: 0` (on the route or in the mesh default): no retry policy at all.
* Otherwise the built-in default with the given fields replacing its own: `retryOn` is
  Envoy's list, where numbers are HTTP status codes (they become `retriable_status_codes`,
  and `retriable-status-codes` is added); `perTryTimeout`, `backoff` (base interval),
  `retryRemoteLocalities` (previous_priorities) and `retryIgnorePreviousHosts`.

With consistent-hash load balancing a retry must stay on the hashed host, so the
previous_hosts predicate is left out (`hash_policy=True`), as in Istio.
"""

from __future__ import annotations

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2
from envoy.extensions.retry.priority.previous_priorities.v3 import (
    previous_priorities_config_pb2 as prio_pb2,
)

from shoal.api.routepolicies import HTTPRetry

_DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
_RETRIABLE = "retriable-status-codes"


def _previous_hosts() -> rc.RetryPolicy.RetryHostPredicate:
    predicate = rc.RetryPolicy.RetryHostPredicate(name="envoy.retry_host_predicates.previous_hosts")
    predicate.typed_config.Pack(previous_hosts_pb2.PreviousHostsPredicate())
    return predicate


def default_retry_policy(hash_policy: bool = False) -> rc.RetryPolicy:
    """Istio's built-in default: retry twice, on another host, when the request never reached
    an app (connect failure, reset, 503 from an upstream sidecar whose app is gone)."""
    policy = rc.RetryPolicy(
        retry_on=_DEFAULT_RETRY_ON,
        retriable_status_codes=[503],
        host_selection_retry_max_attempts=5,
    )
    policy.num_retries.value = 2
    if not hash_policy:
        policy.retry_host_predicate.append(_previous_hosts())
    return policy


def parse_retry_on(retry_on: str) -> tuple[str, list[int]]:
    """Envoy's retry_on conditions and the status codes among them ("5xx,503" -> "5xx", [503])."""
    conditions: list[str] = []
    codes: list[int] = []
    for part in (p.strip() for p in retry_on.split(",")):
        if not part:
            continue
        if part.isdigit():
            codes.append(int(part))
        else:
            conditions.append(part)
    if codes and _RETRIABLE not in conditions:
        conditions.append(_RETRIABLE)
    return ",".join(conditions), codes


def retry_policy(
    retries: HTTPRetry | None, mesh_default: HTTPRetry | None = None, hash_policy: bool = False
) -> rc.RetryPolicy | None:
    """The route's retry policy, or None when retries are turned off."""
    given = retries if retries is not None else mesh_default
    out = default_retry_policy(hash_policy)
    if given is None:
        return out
    if given.attempts <= 0:
        return None
    out.num_retries.value = given.attempts
    if given.retry_on:
        out.retry_on, codes = parse_retry_on(given.retry_on)
        del out.retriable_status_codes[:]
        out.retriable_status_codes.extend(codes)
    if given.per_try_timeout is not None:
        out.per_try_timeout.FromNanoseconds(round(given.per_try_timeout * 1e9))
    if given.retry_ignore_previous_hosts is not None:
        del out.retry_host_predicate[:]
        if given.retry_ignore_previous_hosts:
            out.retry_host_predicate.append(_previous_hosts())
    if given.retry_remote_localities:
        out.retry_priority.name = "envoy.retry_priorities.previous_priorities"
        out.retry_priority.typed_config.Pack(prio_pb2.PreviousPrioritiesConfig(update_frequency=2))
    if given.backoff is not None:
        out.retry_back_off.base_interval.FromNanoseconds(round(given.backoff * 1e9))
    return out
