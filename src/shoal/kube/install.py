"""`shoal install`: the manifests (manifests.py) applied through the API server.

Each object is created, or, when it exists, updated with a JSON merge patch of the manifest
(fields shoal sets are brought to what this version writes; fields others set, such as a
Service's clusterIP, are kept). The CA Secret is the exception: it is created once and never
replaced, since replacing the root would break every workload's trust in running proxies;
a re-install reads the root from it for the webhooks' caBundle.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lightkube import codecs
from lightkube.config.kubeconfig import KubeConfig
from lightkube.core.exceptions import ConfigError
from lightkube.resources.core_v1 import Secret
from lightkube.types import PatchType

from shoal.kube import names
from shoal.kube.client import KubeClient, KubeConfigError, KubeStatusError, load_config
from shoal.kube.manifests import CA_SECRET

ROOTS_KEY = "trusted-roots.pem"


def connect(kubeconfig: Path | None) -> KubeClient:
    """A client for `kubeconfig`, or, as kubectl finds one, `$KUBECONFIG`, ~/.kube/config,
    then the pod's service account."""
    if kubeconfig is not None:
        return KubeClient(load_config(kubeconfig))
    try:
        config = KubeConfig.from_env().get()
    except (ConfigError, OSError) as err:
        raise KubeConfigError(
            f"no kubeconfig ($KUBECONFIG, ~/.kube/config) or in-cluster credentials: {err}"
        ) from None
    if config is None:
        raise KubeConfigError("the kubeconfig has no current context")
    return KubeClient(config)


async def existing_ca(client: KubeClient) -> dict[str, bytes] | None:
    """The files of the CA Secret already in the cluster, or None."""
    try:
        secret = await client.call(client.typed.get(Secret, CA_SECRET, namespace=names.NAMESPACE))
    except KubeStatusError as err:
        if err.code == 404:
            return None
        raise
    return {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}


def _describe(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')} {where}{meta.get('name')}"


async def apply_object(client: KubeClient, obj: Mapping[str, Any]) -> str:
    """Create `obj` or merge-patch the existing one; returns what was done, for the user."""
    typed = codecs.from_dict(dict(obj))
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    try:
        await client.call(client.typed.create(typed))
        return f"created {_describe(obj)}"
    except KubeStatusError as err:
        if err.code != 409:
            raise
    if obj.get("kind") == "Secret":
        return f"kept {_describe(obj)} (exists; never replaced)"
    # lightkube types patch() per resource class; the class here is only known at run time
    kind: Any = type(typed)
    await client.call(
        client.typed.patch(
            kind, meta["name"], dict(obj), namespace=namespace, patch_type=PatchType.MERGE
        )
    )
    return f"updated {_describe(obj)}"


async def apply_all(client: KubeClient, objects: Sequence[Mapping[str, Any]]) -> list[str]:
    """Apply every object in order; stops at the first refusal (KubeError)."""
    return [await apply_object(client, obj) for obj in objects]
