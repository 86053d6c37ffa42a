"""ReferenceGrant (gateway.networking.k8s.io/v1beta1): which objects of other namespaces may
refer to objects of this one (a route's backendRef to a Service in another namespace, a
Gateway's certificateRef to a Secret). Without one a cross-namespace reference is refused."""

from __future__ import annotations

from pydantic import Field

from shoal.api.base import ApiModel, DnsLabel
from shoal.api.gatewayapi.common import ObjectName


class ReferenceGrantFrom(ApiModel):
    group: str
    kind: str
    namespace: DnsLabel


class ReferenceGrantTo(ApiModel):
    group: str
    kind: str
    name: ObjectName | None = None


class ReferenceGrantSpec(ApiModel):
    from_: list[ReferenceGrantFrom] = Field(alias="from", min_length=1, max_length=16)
    to: list[ReferenceGrantTo] = Field(min_length=1, max_length=16)

    def permits(self, source: tuple[str, str, str], target: tuple[str, str, str]) -> bool:
        """Whether `source` (group, kind, namespace) may refer to `target` (group, kind, name)
        of this grant's namespace."""
        group, kind, namespace = source
        to_group, to_kind, name = target
        return any(
            _same_group(f.group, group) and f.kind == kind and f.namespace == namespace
            for f in self.from_
        ) and any(
            _same_group(t.group, to_group) and t.kind == to_kind and t.name in (None, name)
            for t in self.to
        )


def _same_group(a: str, b: str) -> bool:
    # Kubernetes' core group is written "" (and, by some, "core")
    return a == b or (a in ("", "core") and b in ("", "core"))
