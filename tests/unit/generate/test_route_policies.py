"""Generation of VirtualService route policies: retries, timeouts, faults, mirrors, rewrites,
redirects, direct responses, header operations, CORS, and the MeshConfig default retry policy.
Pure: YAML in, Envoy protos out, compared field by field with Istio's translation."""

from __future__ import annotations

from typing import Any

from envoy.config.core.v3 import base_pb2 as rc_base
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from google.protobuf import any_pb2

from shoal.generate import ConfigGenerator
from shoal.generate.prepared import unpack
from shoal.generate.retries import parse_retry_on, retry_policy

from .meshcfg import RATINGS, REVIEWS, generator, sidecar

SE = REVIEWS.split("---")[0] + "---" + REVIEWS.split("---")[1] + "---\n" + RATINGS


def _vs(http: str) -> str:
    return f"""---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [reviews]
  http:
{http}"""


def _routes(*texts: str) -> list[rc.Route]:
    gen: ConfigGenerator = generator(SE, *texts)
    res = next(iter(gen.routes(sidecar()).values()))
    config = unpack(res, route_pb2.RouteConfiguration())
    assert isinstance(config, route_pb2.RouteConfiguration)
    vh = next(v for v in config.virtual_hosts if v.name == "reviews.default.svc.cluster.local:80")
    return list(vh.routes)


DEST = "    route: [{destination: {host: reviews, port: {number: 80}}}]\n"


def test_default_retry_policy_is_istios() -> None:
    (route,) = _routes()
    policy = route.route.retry_policy
    assert policy.num_retries.value == 2
    assert policy.retry_on == (
        "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
    )
    assert list(policy.retriable_status_codes) == [503]
    assert policy.host_selection_retry_max_attempts == 5
    assert [p.name for p in policy.retry_host_predicate] == [
        "envoy.retry_host_predicates.previous_hosts"
    ]


def test_retries_override_the_default_field_by_field() -> None:
    (route,) = _routes(
        _vs(
            "  - retries: {attempts: 3, perTryTimeout: 2s, retryOn: '5xx,gateway-error,503', "
            "retryRemoteLocalities: true, backoff: 50ms}\n" + DEST
        )
    )
    policy = route.route.retry_policy
    assert policy.num_retries.value == 3
    assert policy.retry_on == "5xx,gateway-error,retriable-status-codes"
    assert list(policy.retriable_status_codes) == [503]
    assert policy.per_try_timeout.ToMilliseconds() == 2000
    assert policy.retry_priority.name == "envoy.retry_priorities.previous_priorities"
    assert policy.retry_back_off.base_interval.ToMilliseconds() == 50
    assert policy.host_selection_retry_max_attempts == 5
    assert len(policy.retry_host_predicate) == 1


def test_attempts_zero_turns_retries_off_and_ignore_previous_hosts_false_drops_predicate() -> None:
    off, keep = _routes(
        _vs(
            "  - match: [{uri: {prefix: /off}}]\n    retries: {attempts: 0}\n"
            + DEST
            + "  - retries: {attempts: 1, retryIgnorePreviousHosts: false}\n"
            + DEST
        )
    )
    assert not off.route.HasField("retry_policy")
    assert keep.route.retry_policy.num_retries.value == 1
    assert len(keep.route.retry_policy.retry_host_predicate) == 0


def test_mesh_config_replaces_or_turns_off_the_default() -> None:
    mesh = """---
apiVersion: shoal.dev/v1alpha1
kind: MeshConfig
metadata: {name: mesh, namespace: default}
spec:
  defaultHttpRetryPolicy: {attempts: %s}
"""
    (off,) = _routes(mesh % "0")
    assert not off.route.HasField("retry_policy")
    (five,) = _routes(mesh % "5, retryOn: 5xx", _vs(DEST.replace("    route", "  - route")))
    assert five.route.retry_policy.num_retries.value == 5
    assert five.route.retry_policy.retry_on == "5xx"
    # a route's own retries win over the mesh default
    (own,) = _routes(mesh % "0", _vs("  - retries: {attempts: 4}\n" + DEST))
    assert own.route.retry_policy.num_retries.value == 4


def test_parse_retry_on_and_consistent_hash_keeps_the_host() -> None:
    assert parse_retry_on("503, reset,") == ("reset,retriable-status-codes", [503])
    assert parse_retry_on("5xx") == ("5xx", [])
    hashed = retry_policy(None, None, hash_policy=True)
    assert hashed is not None and len(hashed.retry_host_predicate) == 0


def test_timeout_also_caps_grpc_timeout_header() -> None:
    (route,) = _routes(_vs("  - timeout: 1.5s\n" + DEST))
    assert route.route.timeout.ToMilliseconds() == 1500
    assert route.route.max_grpc_timeout.ToMilliseconds() == 1500
    (none,) = _routes()
    assert none.route.timeout.ToMilliseconds() == 0 and none.route.HasField("max_grpc_timeout")


def test_fault_is_a_per_route_filter_config() -> None:
    (route,) = _routes(
        _vs(
            "  - fault: {delay: {percentage: {value: 0.1}, fixedDelay: 5s}, "
            "abort: {percentage: {value: 10}, httpStatus: 400}}\n" + DEST
        )
    )
    fault = fault_pb2.HTTPFault()
    _enabled(route, "envoy.filters.http.fault").Unpack(fault)
    assert fault.delay.fixed_delay.seconds == 5
    assert (fault.delay.percentage.numerator, fault.delay.percentage.denominator) == (1000, 2)
    assert fault.abort.http_status == 400 and fault.abort.percentage.numerator == 100000
    (grpc,) = _routes(_vs("  - fault: {abort: {grpcStatus: UNAVAILABLE}}\n" + DEST))
    _enabled(grpc, "envoy.filters.http.fault").Unpack(fault)
    assert fault.abort.grpc_status == 14 and fault.abort.percentage.numerator == 0


def test_mirror_and_mirrors_with_percentages() -> None:
    (route,) = _routes(
        _vs(
            "  - mirror: {host: ratings.shop.svc.cluster.local}\n"
            "    mirrorPercentage: {value: 12.5}\n" + DEST
        )
    )
    (m,) = route.route.request_mirror_policies
    assert m.cluster == "outbound|80||ratings.shop.svc.cluster.local"
    assert m.runtime_fraction.default_value.numerator == 125000
    assert m.trace_sampled.value is False
    (many,) = _routes(
        _vs(
            "  - mirrors:\n"
            "    - destination: {host: reviews, subset: v2, port: {number: 80}}\n"
            "    - destination: {host: ratings.shop.svc.cluster.local}\n"
            "      percentage: {value: 0}\n" + DEST
        )
    )
    assert [p.cluster for p in many.route.request_mirror_policies] == [
        "outbound|80|v2|reviews.default.svc.cluster.local"
    ]


def test_rewrite_redirect_and_direct_response() -> None:
    rewrite, regex, redirect, direct = _routes(
        _vs(
            "  - match: [{uri: {prefix: /ratings}}]\n"
            "    rewrite: {uri: /v1/bookRatings, authority: new.example}\n"
            + DEST
            + "  - match: [{uri: {prefix: /re}}]\n"
            "    rewrite: {uriRegexRewrite: {match: '^/re/(.*)$', rewrite: '/\\1'}}\n"
            + DEST
            + "  - match: [{uri: {exact: /old}}]\n"
            "    redirect: {uri: /new, authority: a.example, scheme: https, port: 443}\n"
            "  - directResponse: {status: 503, body: {bytes: dW5rbm93biBlcnJvcg==}}\n"
        )
    )
    assert rewrite.route.prefix_rewrite == "/v1/bookRatings"
    assert rewrite.route.host_rewrite_literal == "new.example"
    assert regex.route.regex_rewrite.pattern.regex == "^/re/(.*)$"
    assert regex.route.regex_rewrite.substitution == "/\\1"
    assert (
        redirect.redirect.path_redirect == "/new" and redirect.redirect.host_redirect == "a.example"
    )
    assert redirect.redirect.scheme_redirect == "https" and redirect.redirect.port_redirect == 0
    assert redirect.redirect.response_code == rc.RedirectAction.MOVED_PERMANENTLY
    assert direct.direct_response.status == 503
    assert direct.direct_response.body.inline_bytes == b"unknown error"


def test_headers_host_becomes_a_rewrite() -> None:
    # other pseudo-headers are refused when loading (tests/unit/api/test_api_http_fields.py)
    (route,) = _routes(
        _vs(
            "  - headers:\n"
            "      request: {set: {x-a: '1', host: h.example}, add: {x-b: '2'}, "
            "remove: [x-c]}\n"
            "      response: {set: {x-d: '3'}, add: {x-e: '4'}, remove: [x-f]}\n" + DEST
        )
    )
    assert [(h.header.key, h.append_action) for h in route.request_headers_to_add] == [
        ("x-a", rc_base.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD),
        ("x-b", rc_base.HeaderValueOption.APPEND_IF_EXISTS_OR_ADD),
    ]
    assert list(route.request_headers_to_remove) == ["x-c"]
    assert [h.header.key for h in route.response_headers_to_add] == ["x-d", "x-e"]
    assert list(route.response_headers_to_remove) == ["x-f"]
    assert route.route.host_rewrite_literal == "h.example"


def _enabled(route: rc.Route, name: str) -> any_pb2.Any:
    """The per-route config of filter `name`, which must turn the (disabled) filter on."""
    wrapper = rc.FilterConfig()
    assert route.typed_per_filter_config[name].Unpack(wrapper)
    assert not wrapper.disabled
    return wrapper.config


def test_cors_policy_is_a_per_route_filter_config() -> None:
    (route,) = _routes(
        _vs(
            "  - corsPolicy: {allowOrigins: [{exact: 'https://example.com'}, {regex: '.*[.]ex'}],"
            " allowMethods: [POST, GET], allowHeaders: [X-Foo-Bar], exposeHeaders: [X-A],"
            " maxAge: 24h, allowCredentials: false, unmatchedPreflights: IGNORE}\n" + DEST
        )
    )
    cors = cors_pb2.CorsPolicy()
    _enabled(route, "envoy.filters.http.cors").Unpack(cors)
    assert cors.allow_origin_string_match[0].exact == "https://example.com"
    assert cors.allow_origin_string_match[1].safe_regex.regex == ".*[.]ex"
    assert cors.allow_methods == "POST,GET" and cors.allow_headers == "X-Foo-Bar"
    assert cors.expose_headers == "X-A" and cors.max_age == "86400"
    assert cors.allow_credentials.value is False
    assert cors.forward_not_matching_preflights.value is False
    assert cors.filter_enabled.default_value.numerator == 100


def _hcms(*texts: str, **meta: object) -> dict[str, object]:
    from envoy.config.listener.v3 import listener_pb2
    from envoy.extensions.filters.network.http_connection_manager.v3 import (
        http_connection_manager_pb2 as hcm_pb2,
    )

    gen = generator(SE, *texts)
    hcms: dict[str, object] = {}
    for name, res in gen.listeners(sidecar(INBOUND_PORT="15006", APP_PORT="8080", **meta)).items():
        listener = unpack(res, listener_pb2.Listener())
        assert isinstance(listener, listener_pb2.Listener)
        hcm = hcm_pb2.HttpConnectionManager()
        listener.filter_chains[0].filters[0].typed_config.Unpack(hcm)
        hcms[name] = hcm
    return hcms


def _disabled(hcm: object) -> list[str]:
    return [f.name for f in hcm.http_filters if f.disabled]  # type: ignore[attr-defined]


REGISTRY_ONLY = """---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec: {outboundTrafficPolicy: {mode: REGISTRY_ONLY}}
"""


def test_outbound_listener_holds_only_the_per_route_filters_its_routes_turn_on() -> None:
    # no VirtualService asks for fault or CORS: only the catch-all's forward proxy is there
    assert _disabled(_hcms()["outbound_http"]) == ["envoy.filters.http.dynamic_forward_proxy"]
    # REGISTRY_ONLY: the catch-all answers 502 itself, no filter a route turns on is left
    assert _disabled(_hcms(REGISTRY_ONLY)["outbound_http"]) == []
    fault = "  - fault: {abort: {httpStatus: 503, percentage: {value: 10}}}\n" + DEST
    cors = "  - corsPolicy: {allowOrigins: [{exact: 'https://a.example'}]}\n" + DEST
    assert _disabled(_hcms(_vs(fault))["outbound_http"]) == [
        "envoy.filters.http.fault",
        "envoy.filters.http.dynamic_forward_proxy",
    ]
    # both, CORS first (a preflight is answered before a fault is injected), all disabled:
    # only routes that ask for them turn them on, other requests do not run them at all
    assert _disabled(_hcms(_vs(fault + cors))["outbound_http"]) == [
        "envoy.filters.http.cors",
        "envoy.filters.http.fault",
        "envoy.filters.http.dynamic_forward_proxy",
    ]


def test_inbound_respects_deadlines() -> None:
    from envoy.extensions.filters.http.router.v3 import router_pb2

    hcms = _hcms()
    inbound: Any = hcms["inbound_http"]
    router = router_pb2.Router()
    inbound.http_filters[-1].typed_config.Unpack(router)
    assert router.respect_expected_rq_timeout
    assert inbound.use_remote_address.value
    assert inbound.internal_address_config.cidr_ranges
