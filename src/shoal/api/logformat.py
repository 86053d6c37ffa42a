"""Envoy's access-log format strings (MeshConfig `accessLogFormat`), checked as Envoy reads them.

Envoy parses the format when it loads the listener and refuses the whole listener for an
unknown command (`%FOO%`), a `%` that starts no command (`100% ok`: write `%%`), arguments
where a command takes none, a missing required argument, or a length (`:N`) on a command that
takes none. The commands and their argument rules here were each checked against Envoy 1.40
(tests/unit/api/test_logformat.py runs them all through `envoy --mode validate`); a command
Envoy has but this list lacks is refused with the list's name, not silently passed on.
"""

from __future__ import annotations

import re
from types import MappingProxyType

from shoal.api.cel import check_cel
from shoal.api.httpgrammar import check_header_name

# %COMMAND%, %COMMAND(args)%, %COMMAND(args):N%, %COMMAND:N%
_COMMAND = re.compile(r"%([A-Z0-9_]+)(?:\(([^)]*)\))?(?::([0-9]+))?%")

NO_ARGUMENTS = frozenset(
    [
        "BYTES_RECEIVED",
        "BYTES_RETRANSMITTED",
        "BYTES_SENT",
        "CONNECTION_ID",
        "CONNECTION_TERMINATION_DETAILS",
        "CUSTOM_FLAGS",
        "DOWNSTREAM_DIRECT_LOCAL_ADDRESS",
        "DOWNSTREAM_DIRECT_REMOTE_ADDRESS",
        "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT",
        "DOWNSTREAM_DIRECT_REMOTE_PORT",
        "DOWNSTREAM_HANDSHAKE_DURATION",
        "DOWNSTREAM_HEADER_BYTES_RECEIVED",
        "DOWNSTREAM_HEADER_BYTES_SENT",
        "DOWNSTREAM_LOCAL_ADDRESS",
        "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT",
        "DOWNSTREAM_LOCAL_DNS_SAN",
        "DOWNSTREAM_LOCAL_PORT",
        "DOWNSTREAM_LOCAL_SUBJECT",
        "DOWNSTREAM_LOCAL_URI_SAN",
        "DOWNSTREAM_PEER_CERT",
        "DOWNSTREAM_PEER_DNS_SAN",
        "DOWNSTREAM_PEER_FINGERPRINT_1",
        "DOWNSTREAM_PEER_FINGERPRINT_256",
        "DOWNSTREAM_PEER_ISSUER",
        "DOWNSTREAM_PEER_SERIAL",
        "DOWNSTREAM_PEER_SUBJECT",
        "DOWNSTREAM_PEER_URI_SAN",
        "DOWNSTREAM_REMOTE_ADDRESS",
        "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT",
        "DOWNSTREAM_REMOTE_PORT",
        "DOWNSTREAM_TLS_CIPHER",
        "DOWNSTREAM_TLS_SESSION_ID",
        "DOWNSTREAM_TLS_VERSION",
        "DOWNSTREAM_TRANSPORT_FAILURE_REASON",
        "DOWNSTREAM_WIRE_BYTES_RECEIVED",
        "DOWNSTREAM_WIRE_BYTES_SENT",
        "DURATION",
        "GRPC_STATUS_NUMBER",
        "HOSTNAME",
        "LOCAL_REPLY_BODY",
        "ACCESS_LOG_TYPE",
        "PACKETS_RETRANSMITTED",
        "PROTOCOL",
        "REQUEST_DURATION",
        "REQUEST_HEADERS_BYTES",
        "REQUEST_TX_DURATION",
        "REQUESTED_SERVER_NAME",
        "RESPONSE_CODE",
        "RESPONSE_CODE_DETAILS",
        "RESPONSE_DURATION",
        "RESPONSE_FLAGS",
        "RESPONSE_FLAGS_LONG",
        "RESPONSE_HEADERS_BYTES",
        "RESPONSE_TRAILERS_BYTES",
        "RESPONSE_TX_DURATION",
        "ROUNDTRIP_DURATION",
        "ROUTE_NAME",
        "STREAM_ID",
        "TRACE_ID",
        "UNIQUE_ID",
        "UPSTREAM_CLUSTER",
        "UPSTREAM_CLUSTER_RAW",
        "UPSTREAM_CONNECTION_ID",
        "UPSTREAM_HEADER_BYTES_RECEIVED",
        "UPSTREAM_HEADER_BYTES_SENT",
        "UPSTREAM_HOST",
        "UPSTREAM_HOST_NAME",
        "UPSTREAM_HOST_NAME_WITHOUT_PORT",
        "UPSTREAM_LOCAL_ADDRESS",
        "UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT",
        "UPSTREAM_LOCAL_PORT",
        "UPSTREAM_LOCAL_URI_SAN",
        "UPSTREAM_PEER_CERT",
        "UPSTREAM_PEER_ISSUER",
        "UPSTREAM_PEER_SUBJECT",
        "UPSTREAM_PEER_URI_SAN",
        "UPSTREAM_PROTOCOL",
        "UPSTREAM_REMOTE_ADDRESS",
        "UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT",
        "UPSTREAM_REMOTE_PORT",
        "UPSTREAM_REQUEST_ATTEMPT_COUNT",
        "UPSTREAM_TLS_CIPHER",
        "UPSTREAM_TLS_SESSION_ID",
        "UPSTREAM_TLS_VERSION",
        "UPSTREAM_TRANSPORT_FAILURE_REASON",
        "UPSTREAM_WIRE_BYTES_RECEIVED",
        "UPSTREAM_WIRE_BYTES_SENT",
        "VIRTUAL_CLUSTER_NAME",
    ]
)
# commands that may take an argument (a time format, a variant) and no length
OPTIONAL_ARGUMENT = frozenset(
    [
        "START_TIME",
        "START_TIME_LOCAL",
        "EMIT_TIME",
        "EMIT_TIME_LOCAL",
        "DOWNSTREAM_PEER_CERT_V_START",
        "DOWNSTREAM_PEER_CERT_V_END",
        "UPSTREAM_PEER_CERT_V_START",
        "UPSTREAM_PEER_CERT_V_END",
        "PATH",
        "GRPC_STATUS",
    ]
)
# commands that need an argument; the value says whether `:N` (a length) may follow
REQUIRED_ARGUMENT = MappingProxyType(
    {
        "REQ": True,
        "RESP": True,
        "TRAILER": True,
        "DYNAMIC_METADATA": True,
        "UPSTREAM_METADATA": False,
        "CLUSTER_METADATA": False,
        "FILTER_STATE": True,
        "UPSTREAM_FILTER_STATE": True,
        "ENVIRONMENT": True,
        "CEL": True,
        "METADATA": True,
        "QUERY_PARAM": True,
    }
)
_HEADERS = frozenset({"REQ", "RESP", "TRAILER"})
_GRPC_STATUS_FORMS = frozenset({"CAMEL_STRING", "SNAKE_STRING", "NUMBER"})


def _check_command(name: str, args: str | None, length: str | None) -> str | None:
    """Why Envoy would refuse `%name(args):length%`, or None."""
    if name in NO_ARGUMENTS:
        return "takes no argument or length" if args is not None or length else None
    if name in OPTIONAL_ARGUMENT:
        if length:
            return "takes no length"
        if name == "GRPC_STATUS" and args is not None and args not in _GRPC_STATUS_FORMS:
            return f"takes one of {', '.join(sorted(_GRPC_STATUS_FORMS))}"
        return None
    if name not in REQUIRED_ARGUMENT:
        return "is not an Envoy access-log command shoal knows"
    if not args:
        return "needs an argument in parentheses"
    if length and not REQUIRED_ARGUMENT[name]:
        return "takes no length"
    if name in _HEADERS:
        names = args.split("?")
        if len(names) > 2:
            return "takes a header name and at most one fallback (NAME?OTHER)"
        for header in names:
            try:  # a header, or a pseudo-header (:path, :status)
                check_header_name(header.removeprefix(":"))
            except ValueError as exc:
                return str(exc)
    if name == "CEL":
        try:
            check_cel(args)
        except ValueError as exc:
            return str(exc)
    return None


def check_log_format(text: str) -> str:
    """An access-log format string: literal text, `%%`, and commands Envoy knows."""
    pos = 0
    while (start := text.find("%", pos)) != -1:
        if text.startswith("%%", start):
            pos = start + 2
            continue
        found = _COMMAND.match(text, start)
        if found is None:
            raise ValueError(
                f"'%' at {start} starts no command such as %START_TIME% or %REQ(x-name)%; "
                "write '%%' for a literal '%'"
            )
        problem = _check_command(found.group(1), found.group(2), found.group(3))
        if problem is not None:
            raise ValueError(f"{found.group()} at {start}: {found.group(1)} {problem}")
        pos = found.end()
    return text
