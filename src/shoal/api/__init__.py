"""shoal.api: typed models of every config kind, YAML loading that keeps file and line,
and validation whose errors name file, line and field.

Pure: no sockets, no file I/O (callers pass file names and texts), no asyncio.
"""

from shoal.api.changes import Change
from shoal.api.destinationrule import (
    DestinationRuleSpec,
    LoadBalancerSettings,
    Subset,
    TrafficPolicy,
)
from shoal.api.duration import Duration, format_duration, parse_duration
from shoal.api.errors import ConfigError, InvalidConfigError, render_path
from shoal.api.hosts import fqdn, host_matches, is_cluster_local, short_names
from shoal.api.kinds import KIND_SPECS, KINDS, KindSpec
from shoal.api.load import DocumentResult, FileResult, parse_documents, parse_file, parse_text
from shoal.api.localworkload import LocalWorkloadSpec
from shoal.api.meta import ObjectMeta
from shoal.api.resource import Origin, Resource, ResourceKey, Spec
from shoal.api.serviceentry import (
    ServiceEntrySpec,
    ServicePort,
    WorkloadEntrySpec,
    WorkloadSelector,
)
from shoal.api.store import ConfigDelta, ConfigStore, StoreResult
from shoal.api.validate import validate_references
from shoal.api.virtualservice import (
    Destination,
    HeaderOperations,
    Headers,
    HTTPMatchRequest,
    HTTPRoute,
    HTTPRouteDestination,
    L4MatchAttributes,
    PortSelector,
    RouteDestination,
    StringMatch,
    TCPRoute,
    VirtualServiceSpec,
)

__all__ = [
    "KINDS",
    "KIND_SPECS",
    "Change",
    "ConfigDelta",
    "ConfigError",
    "ConfigStore",
    "Destination",
    "DestinationRuleSpec",
    "DocumentResult",
    "Duration",
    "FileResult",
    "HTTPMatchRequest",
    "HTTPRoute",
    "HTTPRouteDestination",
    "HeaderOperations",
    "Headers",
    "InvalidConfigError",
    "KindSpec",
    "L4MatchAttributes",
    "LoadBalancerSettings",
    "LocalWorkloadSpec",
    "ObjectMeta",
    "Origin",
    "PortSelector",
    "Resource",
    "ResourceKey",
    "RouteDestination",
    "ServiceEntrySpec",
    "ServicePort",
    "Spec",
    "StoreResult",
    "StringMatch",
    "Subset",
    "TCPRoute",
    "TrafficPolicy",
    "VirtualServiceSpec",
    "WorkloadEntrySpec",
    "WorkloadSelector",
    "format_duration",
    "fqdn",
    "host_matches",
    "is_cluster_local",
    "parse_documents",
    "parse_duration",
    "parse_file",
    "parse_text",
    "render_path",
    "short_names",
    "validate_references",
]
