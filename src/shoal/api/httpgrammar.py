"""What HTTP allows in the header names, header values, paths and cookies config puts on the wire.

Envoy's own checks are looser than HTTP: it accepts a header name with a space in
`request_headers_to_add` (and then every request fails), refuses a value such as `50%` (its
header formatter reads `%...%` as a variable), and ignores or refuses pseudo-headers. The
grammar here is RFC 9110's (a header name is a `token`; a value has no CR, LF, NUL or other
control characters), RFC 6265's for cookies and RFC 3986's for schemes and paths, plus
Envoy's header-formatter syntax, so such config is a load error naming its field.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

# Envoy's HeaderValue and HeaderMatcher fields hold at most this many bytes.
MAX_HEADER_BYTES = 16384

# RFC 9110 5.6.2: token = 1*tchar
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 5.5: field-value characters are VCHAR, obs-text, SP and HTAB (no controls)
_BAD_VALUE_CHAR = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

# Pseudo-headers a route may match on (Envoy's HeaderMatcher sees them like headers).
MATCHABLE_PSEUDO = frozenset({":authority", ":method", ":path", ":scheme"})
# Set through headers, these become the request's authority (Istio's rule, see routes.py).
AUTHORITY_NAMES = frozenset({":authority", "host"})
# Headers that frame the message or the connection: Envoy computes them, and a set value
# (a wrong content-length, a `connection: close`) breaks the request instead of changing it.
FRAMING_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection",
     "upgrade", "te"}
)  # fmt: skip

# Envoy's substitution formatter: %% is a literal %, %COMMAND(args)?(:N)?% a variable.
_FORMAT_COMMAND = re.compile(r"%([A-Z0-9_]+)(\([^)]*\))?(:[0-9]+)?%")
# Variables valid in header values (checked against Envoy 1.40 in the unit tests).
FORMAT_COMMANDS = frozenset(
    {
        "DOWNSTREAM_REMOTE_ADDRESS",
        "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT",
        "DOWNSTREAM_REMOTE_PORT",
        "DOWNSTREAM_DIRECT_REMOTE_ADDRESS",
        "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT",
        "DOWNSTREAM_LOCAL_ADDRESS",
        "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT",
        "DOWNSTREAM_LOCAL_PORT",
        "DOWNSTREAM_LOCAL_URI_SAN",
        "DOWNSTREAM_PEER_URI_SAN",
        "DOWNSTREAM_PEER_SUBJECT",
        "DOWNSTREAM_TLS_VERSION",
        "UPSTREAM_REMOTE_ADDRESS",
        "UPSTREAM_CLUSTER",
        "HOSTNAME",
        "PROTOCOL",
        "REQUESTED_SERVER_NAME",
        "ROUTE_NAME",
        "RESPONSE_CODE",
        "START_TIME",
        "REQ",
        "RESP",
    }
)


def _utf8_len(value: str) -> int:
    return len(value.encode("utf-8", "surrogatepass"))


def check_header_name(name: str) -> str:
    """A header name as HTTP defines it (RFC 9110 token), e.g. `x-user`."""
    if not name:
        raise ValueError("header name must not be empty")
    if not _TOKEN.fullmatch(name):
        raise ValueError(
            f"header name {name!r} is not an HTTP token: letters, digits and "
            "!#$%&'*+-.^_`|~ only (no spaces, colons or control characters)"
        )
    if _utf8_len(name) > MAX_HEADER_BYTES:
        raise ValueError(f"header name is longer than Envoy's {MAX_HEADER_BYTES} bytes")
    return name


def check_match_header_name(name: str) -> str:
    """A header a route matches on: a token, or one of the request pseudo-headers."""
    if name.lower() in MATCHABLE_PSEUDO:
        return name
    if name.startswith("@request.auth.claims"):
        # Istio's routing on a verified JWT's claims (at gateways): valid, not done yet
        raise ValueError(
            f"{name!r}: routing on JWT claims is not implemented yet; match a header that "
            "the RequestAuthentication's outputClaimToHeaders sets instead"
        )
    if name.startswith(":"):
        raise ValueError(
            f"{name!r} is not a request pseudo-header; use one of "
            f"{', '.join(sorted(MATCHABLE_PSEUDO))} or a header name"
        )
    return check_header_name(name)


def check_settable_header_name(name: str) -> str:
    """A header that `set`/`add` may change: not a pseudo-header (except the authority)."""
    lower = name.lower()
    if lower in AUTHORITY_NAMES:
        return name
    if lower == ":path":
        raise ValueError(
            "':path' cannot be set as a header (Envoy forbids changing pseudo-headers); "
            "use rewrite.uri or rewrite.uriRegexRewrite"
        )
    if name.startswith(":"):
        raise ValueError(
            f"{name!r} cannot be set as a header: Envoy forbids changing pseudo-headers "
            "(only ':authority'/'host' may be set, which rewrites the authority)"
        )
    check_header_name(name)
    if lower in FRAMING_HEADERS:
        raise ValueError(
            f"{name!r} frames the message or the connection; Envoy sets it, and a value set "
            "here would break requests"
        )
    return name


def check_removable_header_name(name: str) -> str:
    """A header that `remove` may drop: Envoy refuses pseudo-headers and host."""
    if name.startswith(":") or name.lower() == "host":
        raise ValueError(f"{name!r} cannot be removed (Envoy forbids removing it)")
    return check_header_name(name)


def check_header_text(value: str, what: str = "header value") -> str:
    """Text that ends up in a header as it is: no CR, LF, NUL or other control characters."""
    bad = _BAD_VALUE_CHAR.search(value)
    if bad is not None:
        raise ValueError(
            f"{what} {value!r} contains the control character {bad.group()!r} at "
            f"{bad.start()}; HTTP allows none (CR and LF would split the header)"
        )
    if _utf8_len(value) > MAX_HEADER_BYTES:
        raise ValueError(f"{what} is longer than Envoy's {MAX_HEADER_BYTES} bytes")
    return value


def _variable_ok(found: re.Match[str] | None) -> bool:
    if found is None or found.group(1) not in FORMAT_COMMANDS:
        return False
    command, args = found.group(1), found.group(2)
    if command in ("REQ", "RESP"):
        # %REQ(x-name)% or %REQ(x-name?fallback)%, optionally :N to truncate
        names = args[1:-1].split("?") if args else [""]
        return len(names) <= 2 and all(_TOKEN.fullmatch(n.removeprefix(":")) for n in names)
    # only REQ/RESP take a length (Envoy: "does not take any parameters or length")
    return found.group(3) is None and (command == "START_TIME" or args is None)


def check_header_value(value: str) -> str:
    """A value for `set`/`add`: header text whose `%` Envoy's formatter can read."""
    check_header_text(value)
    pos = 0
    while (start := value.find("%", pos)) != -1:
        if value.startswith("%%", start):
            pos = start + 2
            continue
        found = _FORMAT_COMMAND.match(value, start)
        if found is None or not _variable_ok(found):
            raise ValueError(
                f"header value {value!r}: Envoy reads '%' at {start} as the start of a "
                "variable such as %DOWNSTREAM_REMOTE_ADDRESS% or %REQ(x-name)%; write '%%' "
                "for a literal '%'"
            )
        pos = found.end()
    return value


_COOKIE_VALUE_BAD = re.compile(r"[\x00-\x1f\x7f;]")


def check_cookie_name(name: str) -> str:
    """A cookie name (RFC 6265: a token)."""
    if not _TOKEN.fullmatch(name):
        raise ValueError(
            f"cookie name {name!r} is not an HTTP token: letters, digits and !#$%&'*+-.^_`|~ only"
        )
    return name


def check_cookie_text(value: str) -> str:
    """A cookie attribute value or path: no control characters and no ';'."""
    bad = _COOKIE_VALUE_BAD.search(value)
    if bad is not None:
        raise ValueError(f"{value!r} contains {bad.group()!r}, which a cookie cannot hold")
    return value


# RFC 3986: path characters (pchar and '/'), plus '%' escapes; a query may follow.
_PATH = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*(\?[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*)?")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")


def check_path(value: str, *, query: bool = False) -> str:
    """A path Envoy puts in the request line or a Location: starts with '/', URI characters."""
    found = _PATH.fullmatch(value)
    if found is None or (found.group(1) and not query):
        allowed = "; a '?query' may follow" if query else ""
        raise ValueError(
            f"path {value!r} must start with '/' and hold only URI path characters "
            f"(no spaces, '#' or control characters; escape others as %XX){allowed}"
        )
    return value


def check_scheme(value: str) -> str:
    if not _SCHEME.fullmatch(value):
        raise ValueError(f"scheme {value!r} is not a URI scheme (e.g. 'https')")
    return value


HeaderName = Annotated[str, AfterValidator(check_header_name)]
MatchHeaderName = Annotated[str, AfterValidator(check_match_header_name)]
SettableHeaderName = Annotated[str, AfterValidator(check_settable_header_name)]
RemovableHeaderName = Annotated[str, AfterValidator(check_removable_header_name)]
HeaderValue = Annotated[str, AfterValidator(check_header_value)]
HeaderText = Annotated[str, AfterValidator(check_header_text)]
CookieName = Annotated[str, AfterValidator(check_cookie_name)]
CookieText = Annotated[str, AfterValidator(check_cookie_text)]


_AUTHORITY = re.compile(
    r"(?P<host>[A-Za-z0-9](?:[-A-Za-z0-9]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[-A-Za-z0-9]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?"
)


def check_authority(value: str) -> str:
    """A Host/`:authority` value: a DNS name, IPv4 or [IPv6] address, optionally `:port`."""
    found = _AUTHORITY.fullmatch(value)
    port = found.group("port") if found else None
    if found is None or len(found.group("host")) > 253 or (port and not 0 < int(port) < 65536):
        raise ValueError(
            f"authority {value!r} is not a host name or address with an optional :port "
            "(e.g. 'reviews.example.com' or 'reviews:8080')"
        )
    return value


_REWRITE_REF = re.compile(r"\\(.?)")


def check_rewrite_substitution(rewrite: str, groups: int) -> str:
    """A regex rewrite's replacement: `\\N` names one of the `groups` groups, `\\\\` is `\\`."""
    for ref in _REWRITE_REF.finditer(rewrite):
        what = ref.group(1)
        if what == "\\":
            continue
        if not what.isdigit():
            raise ValueError(
                f"rewrite {rewrite!r}: '\\' must be followed by a group number or '\\'"
            )
        if int(what) > groups:
            raise ValueError(
                f"rewrite {rewrite!r} uses \\{what}, but the regex has only {groups} group(s)"
            )
    return check_header_text(rewrite, "rewrite")
