"""Workload identities: `spiffe://cluster.local/ns/<namespace>/sa/<service-account>`."""

from __future__ import annotations

import re
from dataclasses import dataclass

TRUST_DOMAIN = "cluster.local"

# Kubernetes names: what a namespace or service account may be called
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


class IdentityError(ValueError):
    """Not a SPIFFE id of this trust domain, or a name that cannot be one."""


@dataclass(frozen=True)
class Identity:
    """A namespace and service account: who a workload is."""

    namespace: str
    service_account: str

    def __post_init__(self) -> None:
        names = (("namespace", self.namespace), ("service account", self.service_account))
        for what, value in names:
            if not _NAME.match(value):
                raise IdentityError(f"{what} {value!r} is not a valid name")

    @property
    def spiffe_id(self) -> str:
        return f"spiffe://{TRUST_DOMAIN}/ns/{self.namespace}/sa/{self.service_account}"

    @classmethod
    def parse(cls, uri: str) -> Identity:
        prefix = f"spiffe://{TRUST_DOMAIN}/"
        if not uri.startswith(prefix):
            raise IdentityError(f"{uri!r} is not a SPIFFE id of trust domain {TRUST_DOMAIN}")
        parts = uri[len(prefix) :].split("/")
        if len(parts) != 4 or parts[0] != "ns" or parts[2] != "sa":
            raise IdentityError(f"{uri!r} must look like {prefix}ns/NAMESPACE/sa/SERVICE_ACCOUNT")
        return cls(parts[1], parts[3])

    def __str__(self) -> str:
        return self.spiffe_id


def spiffe_id(namespace: str, service_account: str) -> str:
    return Identity(namespace, service_account).spiffe_id


# The control plane's own identity: the URI SAN of its xDS/CA serving certificate.
CONTROL_PLANE = Identity("shoal-system", "shoal-control-plane")
# The DNS name clients verify the control plane's certificate against.
CONTROL_PLANE_DNS = "shoal-control-plane.shoal-system.svc"
