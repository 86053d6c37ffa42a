"""The connection to the Kubernetes API: lightkube for configuration and typed writes, its
HTTP client for the informers' raw list and watch.

lightkube (pinned) reads kubeconfig files and in-cluster service-account credentials (token
file re-read on 401, client certificates, exec plugins) and writes typed objects (Leases,
Events, ConfigMaps, TokenReviews). Its `watch()` cannot ask for bookmarks and decodes every
event into a typed model, which fails on a bookmark of a kind with required fields (an
EndpointSlice bookmark carries no `addressType`), and on `410 Gone` it restarts without a
resourceVersion, which loses deletions. So the informers (informer.py) speak list/watch
themselves over the HTTP client lightkube configures (`client_adapter.AsyncClient`, public),
and decode JSON to plain dicts, the form the translations (translate*.py) read.

Errors of the client libraries never leave this module: callers see `KubeError` and its
subclasses only (as kopf hides its clients behind its own error tree).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import msgspec
from lightkube import AsyncClient
from lightkube.config.client_adapter import AsyncClient as adapter_client
from lightkube.config.client_adapter import ConnectionParams
from lightkube.config.kubeconfig import KubeConfig, SingleConfig
from lightkube.core.exceptions import ApiError, ConfigError

from shoal.kube.resources import ResourceType

KubeObject = Mapping[str, Any]
T = TypeVar("T")

# Requests other than watches: a list page of 500 pods is well under a second.
REQUEST_TIMEOUT_S = 10.0


class KubeError(Exception):
    """Anything that went wrong talking to the API server."""


class KubeConfigError(KubeError):
    """No usable kubeconfig or in-cluster credentials."""


class KubeUnavailable(KubeError):
    """The API server could not be reached, or the connection broke."""


class KubeStatusError(KubeError):
    """The API server answered with an error Status (404, 409, 410, 500, ...)."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(f"{code} {reason}: {message}" if reason else f"{code}: {message}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class ListPage:
    items: list[KubeObject]
    resource_version: str
    continue_token: str


def load_config(kubeconfig: Path | None) -> SingleConfig:
    """The kubeconfig file's current context, or (None) the pod's service-account credentials."""
    try:
        config = (
            KubeConfig.from_file(kubeconfig) if kubeconfig else KubeConfig.from_service_account()
        ).get()
    except (ConfigError, OSError) as err:
        where = f"kubeconfig {kubeconfig}" if kubeconfig else "in-cluster service account"
        raise KubeConfigError(f"{where}: {err}") from None
    if config is None:
        raise KubeConfigError(f"kubeconfig {kubeconfig}: no current context")
    return config


def _status_error(code: int, body: bytes) -> KubeStatusError:
    try:
        status = json.loads(body)
    except ValueError:
        status = {}
    if not isinstance(status, dict):
        status = {}
    return KubeStatusError(
        int(status.get("code") or code),
        str(status.get("reason") or ""),
        str(status.get("message") or body[:200].decode(errors="replace")),
    )


def status_of(err: ApiError) -> KubeStatusError:
    """A lightkube ApiError as shoal's own error."""
    status = err.status
    return KubeStatusError(int(status.code or 0), status.reason or "", status.message or "")


class KubeClient:
    """One API server connection: `typed` for writes, raw list/watch for informers."""

    def __init__(self, config: SingleConfig) -> None:
        self.config = config
        timeout = httpx2.Timeout(REQUEST_TIMEOUT_S)
        self.typed = AsyncClient(config, timeout=timeout, trust_env=False, field_manager="shoal")
        self._http = adapter_client(config, ConnectionParams(timeout=timeout, trust_env=False))

    @classmethod
    def connect(cls, kubeconfig: Path | None) -> KubeClient:
        return cls(load_config(kubeconfig))

    async def close(self) -> None:
        await self._http.aclose()
        await self.typed.close()

    async def call(self, request: Awaitable[T]) -> T:
        """Await a typed request (`self.typed.get(...)`, ...) with shoal's errors only."""
        try:
            return await request
        except ApiError as err:
            raise status_of(err) from None
        except httpx2.HTTPError as err:
            raise KubeUnavailable(repr(err)) from None

    async def list_page(
        self, rt: ResourceType, *, limit: int, continue_token: str = ""
    ) -> ListPage:
        """One page of a LIST of every object of `rt` (all namespaces)."""
        params = {"limit": str(limit)}
        if continue_token:
            params["continue"] = continue_token
        try:
            resp = await self._http.get(rt.list_path(), params=params)
        except httpx2.HTTPError as err:
            raise KubeUnavailable(f"list {rt.plural}: {err!r}") from None
        if resp.status_code != 200:
            raise _status_error(resp.status_code, resp.content)
        body = msgspec.json.decode(resp.content)
        meta = body.get("metadata") or {}
        return ListPage(
            list(body.get("items") or ()),
            str(meta.get("resourceVersion") or ""),
            str(meta.get("continue") or ""),
        )

    async def watch(
        self, rt: ResourceType, *, resource_version: str, timeout_s: int
    ) -> AsyncIterator[tuple[str, KubeObject]]:
        """WATCH `rt` from `resource_version` with bookmarks: (type, object) per event, until
        the server ends the stream (after `timeout_s`). ERROR events are yielded as they are."""
        params = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "resourceVersion": resource_version,
            "timeoutSeconds": str(timeout_s),
        }
        # No event may be due for timeout_s (bookmarks come at no fixed interval); a stream
        # silent well past that is a dead connection, not a quiet one.
        timeout = httpx2.Timeout(REQUEST_TIMEOUT_S, read=timeout_s + 30.0)
        request = self._http.build_request("GET", rt.list_path(), params=params, timeout=timeout)
        try:
            resp = await self._http.send(request, stream=True)
        except httpx2.HTTPError as err:
            raise KubeUnavailable(f"watch {rt.plural}: {err!r}") from None
        try:
            if resp.status_code != 200:
                raise _status_error(resp.status_code, await resp.aread())
            async for line in resp.aiter_lines():
                if not line.strip():
                    continue
                event = msgspec.json.decode(line)
                yield str(event.get("type") or ""), event.get("object") or {}
        except httpx2.HTTPError as err:
            raise KubeUnavailable(f"watch {rt.plural}: {err!r}") from None
        except msgspec.DecodeError as err:
            raise KubeUnavailable(f"watch {rt.plural}: bad event: {err}") from None
        finally:
            await resp.aclose()
