"""Host name resolution the way Istio does it: short names become cluster-local FQDNs.

A VirtualService in namespace `shop` may name its destination `reviews`; that means
`reviews.shop.svc.cluster.local`. Every comparison of hosts in shoal goes through `fqdn`
so that the short and long spellings of one service are the same host.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection

CLUSTER_DOMAIN = "cluster.local"
_LOCAL_SUFFIX = f".svc.{CLUSTER_DOMAIN}"


def _is_ip(host: str) -> bool:
    # asked for every host of every resource on every reload: a failed parse raises, which
    # is slow, and most hosts are names, which the first test turns away (no cache: one
    # shared by the process would be module-level state, tests/unit/engine)
    if not host or not (host[0].isdigit() or ":" in host):
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def fqdn(host: str, namespace: str, *, namespaces: Collection[str] | None = None) -> str:
    """Resolve `host`, as written in a resource of `namespace`, to its full name.

    "reviews" -> "reviews.<namespace>.svc.cluster.local"; "reviews.shop" and
    "reviews.shop.svc" -> "reviews.shop.svc.cluster.local"; anything else (wildcards,
    IPs, external names with more labels) is returned unchanged.

    A two-label name is ambiguous ("reviews.shop" or "example.com"). When the caller
    knows which namespaces exist it passes them as `namespaces`, and only names whose
    second label is one of them are expanded; without it every two-label name is.
    """
    if host.endswith(_LOCAL_SUFFIX):
        return host  # already full (the usual spelling in generated and large configs)
    if host == "*" or host.startswith("*.") or _is_ip(host):
        return host
    labels = host.split(".")
    if len(labels) == 1:
        return f"{host}.{namespace}{_LOCAL_SUFFIX}"
    if len(labels) == 2 and (namespaces is None or labels[1] in namespaces):
        return f"{host}{_LOCAL_SUFFIX}"
    if len(labels) == 3 and labels[2] == "svc":
        return f"{host}.{CLUSTER_DOMAIN}"
    return host


def is_cluster_local(host: str) -> bool:
    """True for "<service>.<namespace>.svc.cluster.local"."""
    if not host.endswith(_LOCAL_SUFFIX):
        return False
    head = host.removesuffix(_LOCAL_SUFFIX).split(".")
    return len(head) == 2 and all(head) and "*" not in host


def short_names(fqdn: str) -> list[str]:
    """The names a caller inside the mesh may use for `fqdn`, longest first."""
    if not is_cluster_local(fqdn):
        return [fqdn]
    service, namespace = fqdn.removesuffix(_LOCAL_SUFFIX).split(".")
    return [fqdn, f"{service}.{namespace}.svc", f"{service}.{namespace}", service]


def host_matches(pattern: str, host: str) -> bool:
    """True if `host` is `pattern`, or falls under the wildcard `pattern` ("*.example.com")."""
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return pattern == host


_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_MAX_NAME = 253  # RFC 1035, without the trailing dot


def check_host(host: str) -> str:
    """Validate a host as written in config; return it, or raise ValueError saying why.

    A host becomes an Envoy virtual-host domain, part of cluster names, a DNS name to resolve
    and an SNI, so it must be a DNS name (optionally with a leading `*.` wildcard) or `*`.
    Upper case is refused: Envoy matches domains case-insensitively, so `A.com` and `a.com`
    would be one domain claimed twice.
    """
    if not host:
        raise ValueError("host must not be empty")
    if "://" in host or "/" in host:
        raise ValueError(f"host {host!r} must be a name, not a URL")
    if any(c.isspace() for c in host):
        raise ValueError(f"host {host!r} must not contain whitespace")
    if "*" in host and host != "*" and not (host.startswith("*.") and "*" not in host[1:]):
        raise ValueError(f"host {host!r}: a wildcard is only allowed as the whole first label")
    if host == "*":
        return host
    if len(host) > _MAX_NAME:
        raise ValueError(f"host {host[:40]!r}... is longer than {_MAX_NAME} characters")
    labels = host.removeprefix("*.").split(".")
    if any(not label for label in labels):
        raise ValueError(f"host {host!r} has an empty label")
    for label in labels:
        if label != label.lower():
            raise ValueError(f"host {host!r} must be lower case (DNS names are case-insensitive)")
        if len(label) > 63 or not _LABEL.fullmatch(label):
            raise ValueError(
                f"host {host!r}: label {label[:70]!r} is not a DNS label (letters, digits and "
                "'-', not starting or ending with '-', at most 63 characters)"
            )
    return host
