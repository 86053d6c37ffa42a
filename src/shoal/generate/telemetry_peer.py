"""Who the caller is, for the metrics a server proxy reports (`reporter="destination"`).

The upstream Envoy build has no Istio metadata exchange, so shoal carries the caller's identity
itself, and trusts only what the connection proves:

- **principal and namespace** come from the client certificate Envoy verified: the inbound
  HCM sets `x-forwarded-client-cert` from it (SANITIZE_SET: whatever a caller sent is
  dropped first), and `header_to_metadata` cuts the SPIFFE id and its namespace out of it.
- **workload, app, version, canonical service and revision** are not in the certificate; the
  caller's sidecar states them in `x-shoal-peer-*` request headers, always overwriting what its
  app sent (`outbound_filter`). The server honours them only on its mTLS filter chain, i.e.
  only from a peer holding a mesh certificate, whose sidecar wrote them; on plaintext they are
  stripped unread and those labels are `unknown` (a caller without a certificate could write
  anything).

Either way the headers never reach the app: a server that counts no HTTP metric (Telemetry)
reads nothing, but still removes them (`strip_filter`) while callers' sidecars send them.
"""

from __future__ import annotations

from types import MappingProxyType

from envoy.config.common.mutation_rules.v3 import mutation_rules_pb2
from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.http.header_mutation.v3 import header_mutation_pb2
from envoy.extensions.filters.http.header_to_metadata.v3 import header_to_metadata_pb2 as h2m
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.type.matcher.v3 import regex_pb2
from google.protobuf import any_pb2

from shoal.generate.telemetry_labels import PEER_NAMESPACE, own_identity
from shoal.model import Proxy

# the filters' names in the chain (Envoy picks the extension by its config's type)
FILTER_NAME = "shoal.peer_identity"
PROTOCOL_FILTER_NAME = "shoal.request_protocol"
# where claims of an unproven caller go: stripped from the request, never read
_UNTRUSTED = "shoal.untrusted"
XFCC = "x-forwarded-client-cert"
# header -> (metadata key, the own_identity label it carries)
PEER_HEADERS = MappingProxyType(
    {
        "x-shoal-peer-workload": ("workload", "source_workload"),
        "x-shoal-peer-app": ("app", "source_app"),
        "x-shoal-peer-version": ("version", "source_version"),
        "x-shoal-peer-canonical-service": ("canonical_service", "source_canonical_service"),
        "x-shoal-peer-canonical-revision": ("canonical_revision", "source_canonical_revision"),
    }
)
# what Envoy writes: `By=<own id>;Hash=<hex>;URI=spiffe://cluster.local/ns/NS/sa/SA`
_PRINCIPAL = (r"^.*URI=([^;,]+).*$", r"\1")
_NAMESPACE = (r"^.*URI=spiffe://[^/;,]+/ns/([^/;,]+)/.*$", r"\1")


def _filter(
    config: header_mutation_pb2.HeaderMutation | h2m.Config, name: str = FILTER_NAME
) -> hcm_pb2.HttpFilter:
    out = any_pb2.Any()
    out.Pack(config)
    return hcm_pb2.HttpFilter(name=name, typed_config=out)


# `application/grpc` for gRPC requests, nothing else (so the label has two values)
_GRPC = (r"^(application/grpc)?.*$", r"\1")


def _protocol_rule() -> h2m.Config.Rule:
    return h2m.Config.Rule(header="content-type", on_header_present=_to_metadata("protocol", _GRPC))


def protocol_filter() -> hcm_pb2.HttpFilter:
    """The client side's request_protocol (the server's filter has the same rule)."""
    return _filter(h2m.Config(request_rules=[_protocol_rule()]), PROTOCOL_FILTER_NAME)


def outbound_filter(proxy: Proxy) -> hcm_pb2.HttpFilter:
    """The caller's sidecar states who it is (literals from its node metadata)."""
    own = own_identity(proxy, "source")
    mutations = []
    for header, (_, label) in PEER_HEADERS.items():
        value = own[label]
        if value not in ("unknown", "latest"):
            option = base_pb2.HeaderValueOption(
                header=base_pb2.HeaderValue(key=header, value=value),
                append_action=base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD,
            )
            mutations.append(mutation_rules_pb2.HeaderMutation(append=option))
        else:
            mutations.append(mutation_rules_pb2.HeaderMutation(remove=header))
    config = header_mutation_pb2.HeaderMutation()
    config.mutations.request_mutations.extend(mutations)
    return _filter(config)


def _rewrite(pattern: tuple[str, str]) -> regex_pb2.RegexMatchAndSubstitute:
    return regex_pb2.RegexMatchAndSubstitute(
        pattern=regex_pb2.RegexMatcher(regex=pattern[0]), substitution=pattern[1]
    )


def _to_metadata(
    key: str, rewrite: tuple[str, str] | None = None, namespace: str = PEER_NAMESPACE
) -> h2m.Config.KeyValuePair:
    pair = h2m.Config.KeyValuePair(metadata_namespace=namespace, key=key)
    if rewrite is not None:
        pair.regex_value_rewrite.CopyFrom(_rewrite(rewrite))
    return pair


def inbound_filter(*, mtls: bool) -> hcm_pb2.HttpFilter:
    """On the mTLS chain: the caller's identity into metadata; on plaintext: only stripped.
    Both: the request's protocol (gRPC or not)."""
    rules = [_protocol_rule()]
    if mtls:
        rules += [
            h2m.Config.Rule(header=XFCC, on_header_present=_to_metadata("principal", _PRINCIPAL)),
            h2m.Config.Rule(header=XFCC, on_header_present=_to_metadata("namespace", _NAMESPACE)),
        ]
    namespace = PEER_NAMESPACE if mtls else _UNTRUSTED
    for header, (key, _) in PEER_HEADERS.items():
        claim = _to_metadata(key, None, namespace)
        rules.append(h2m.Config.Rule(header=header, on_header_present=claim, remove=True))
    return _filter(h2m.Config(request_rules=rules))


def strip_filter() -> hcm_pb2.HttpFilter:
    """For a server whose HTTP metrics are off: its callers' sidecars still state who they are
    (other servers count), and the app must not see it. A header mutation that only removes
    (no regex, no metadata): cheaper than `inbound_filter`, whose labels nobody reads here."""
    config = header_mutation_pb2.HeaderMutation()
    config.mutations.request_mutations.extend(
        mutation_rules_pb2.HeaderMutation(remove=header) for header in PEER_HEADERS
    )
    return _filter(config)
