"""Route actions besides forwarding, and what changes a request on its way.

* `rewrite`: `uri` replaces the matched prefix (Envoy `prefix_rewrite`), `uriRegexRewrite`
  substitutes by RE2 regex (`regex_rewrite`), `authority` sets the Host (`host_rewrite_literal`).
* `redirect`: Envoy's `RedirectAction` with Istio's rules (route.go ApplyRedirect): 301 by
  default; `port` omitted from the Location when it is the scheme's default.
* `directResponse`: a fixed status and body (`DirectResponseAction`).
"""

from __future__ import annotations

from types import MappingProxyType

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.type.matcher.v3 import regex_pb2

from shoal.api.routepolicies import HTTPDirectResponse, HTTPRedirect, HTTPRewrite

_REDIRECT_CODES = MappingProxyType(
    {
        0: rc.RedirectAction.MOVED_PERMANENTLY,
        301: rc.RedirectAction.MOVED_PERMANENTLY,
        302: rc.RedirectAction.FOUND,
        303: rc.RedirectAction.SEE_OTHER,
        307: rc.RedirectAction.TEMPORARY_REDIRECT,
        308: rc.RedirectAction.PERMANENT_REDIRECT,
    }
)


def apply_rewrite(action: rc.RouteAction, rewrite: HTTPRewrite | None, authority: str) -> None:
    """Rewrite path and Host; `authority` is a Host set by `headers` (rewrite's wins)."""
    if rewrite is not None:
        if rewrite.uri_regex_rewrite is not None:
            action.regex_rewrite.pattern.CopyFrom(
                regex_pb2.RegexMatcher(regex=rewrite.uri_regex_rewrite.match)
            )
            action.regex_rewrite.substitution = rewrite.uri_regex_rewrite.rewrite
        elif rewrite.uri:
            action.prefix_rewrite = rewrite.uri
        authority = rewrite.authority or authority
    if authority:
        action.host_rewrite_literal = authority


def redirect_action(redirect: HTTPRedirect, listener_port: int) -> rc.RedirectAction:
    out = rc.RedirectAction(response_code=_REDIRECT_CODES[redirect.redirect_code])
    if redirect.uri:
        out.path_redirect = redirect.uri
    elif redirect.prefix_rewrite:
        out.prefix_rewrite = redirect.prefix_rewrite
    if redirect.authority:
        out.host_redirect = redirect.authority
    if redirect.scheme:
        out.scheme_redirect = redirect.scheme
    port = redirect.port or 0
    if redirect.derive_port == "FROM_REQUEST_PORT":
        port = listener_port
    if port:
        scheme = redirect.scheme or "http"
        if not ((port == 80 and scheme == "http") or (port == 443 and scheme == "https")):
            out.port_redirect = port
    return out


def direct_response_action(direct: HTTPDirectResponse) -> rc.DirectResponseAction:
    out = rc.DirectResponseAction(status=direct.status)
    if direct.body is not None:
        if direct.body.bytes is not None:
            out.body.CopyFrom(base_pb2.DataSource(inline_bytes=direct.body.data()))
        else:
            out.body.CopyFrom(base_pb2.DataSource(inline_string=direct.body.string or ""))
    return out
