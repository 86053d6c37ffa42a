"""The mesh's root certificate in every namespace: ConfigMap `istio-ca-root-cert`.

Injected sidecars mount it (volume `istiod-ca-cert`) to verify the control plane's serving
certificate and their peers'. The leader writes it into every namespace (Istio's namespace
controller does the same, with label `istio.io/config: "true"`) when it becomes leader, when
a namespace appears, and when the roots change; a ConfigMap already holding the right
certificate is left alone, so a change of leader writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from types import MappingProxyType

from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap

from shoal.kube.client import KubeClient, KubeError, KubeStatusError

log = logging.getLogger("shoal.kube.rootcert")

CONFIGMAP = "istio-ca-root-cert"
KEY = "root-cert.pem"
LABELS = MappingProxyType({"istio.io/config": "true"})


class RootCertWriter:
    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self.writes = 0
        self._written: dict[str, str] = {}  # namespace -> the PEM known to be there

    def forget(self) -> None:
        self._written.clear()

    async def sync(self, namespaces: Iterable[str], roots_pem: str) -> None:
        """Make every namespace hold `roots_pem`; failures are retried on the next call."""
        for namespace in sorted(namespaces):
            if self._written.get(namespace) == roots_pem:
                continue
            try:
                await self._ensure(namespace, roots_pem)
            except KubeError as err:
                log.warning("%s in %s not written: %s", CONFIGMAP, namespace, err)
                continue
            self._written[namespace] = roots_pem

    async def _ensure(self, namespace: str, pem: str) -> None:
        typed = self.client.typed
        try:
            held = await self.client.call(typed.get(ConfigMap, CONFIGMAP, namespace=namespace))
        except KubeStatusError as err:
            if err.code != 404:
                raise
            cm = ConfigMap(
                metadata=ObjectMeta(name=CONFIGMAP, namespace=namespace, labels=dict(LABELS)),
                data={KEY: pem},
            )
            await self.client.call(typed.create(cm))
            self.writes += 1
            return
        if (held.data or {}).get(KEY) == pem:
            return
        held.data = {**(held.data or {}), KEY: pem}
        labels = held.metadata.labels if held.metadata is not None else None
        if held.metadata is not None:
            held.metadata.labels = {**(labels or {}), **LABELS}
        await self.client.call(typed.replace(held))  # resourceVersion as read: 409 if moved
        self.writes += 1
