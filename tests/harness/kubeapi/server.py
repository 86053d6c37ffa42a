"""KubeAPIServer: the fake's state and settings, its lifecycle, and the controls tests use.

It runs on an asyncio loop (``async with KubeAPIServer() as api``), serving plain HTTP (or
HTTPS with ``tls=True``) on 127.0.0.1. The controls here are meant to be called on that loop;
``runner.KubeAPIThread`` wraps them for synchronous tests. Besides the API itself it plays
the controllers every cluster runs and clients take for granted: CRDs register their types,
new namespaces get a ``default`` ServiceAccount, a deleted namespace's contents are deleted
and the namespace goes once empty.
"""

from __future__ import annotations

import ipaddress
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from .admission import Admission
from .encoding import Encodings
from .errors import ApiError
from .faults import Fault, Faults
from .handlers import Handlers
from .objects import clone
from .resources import Registry, ResourceType
from .semantics import check_body, now, prepare_create, stamp
from .store import Change, Store
from .tokens import TokenInfo, Tokens
from .watch import WatchStream

Obj = dict[str, Any]
ADMIN = {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]}
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@dataclass
class Settings:
    """Knobs tests may turn at any time."""

    bookmark_interval: float = 60.0  # seconds between BOOKMARKs on watches that allow them
    aggregated_discovery: bool = True  # off: /api and /apis answer only the plain documents
    require_auth: bool = False  # on: only known tokens (Tokens) are let in, others get 401
    graceful_pod_deletion: bool = False  # on: pods with a nodeName wait for a 0-grace DELETE
    default_watch_timeout: float | None = None  # watches without timeoutSeconds end after this
    check_namespaces: bool = True  # writes into a namespace that does not exist are 404
    git_version: str = "v1.32.4"
    log_requests: bool = False  # print one line per request (the standalone server's -v)


class KubeAPIServer:
    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        tls: bool = False,
        history_size: int = 10_000,
    ) -> None:
        self.host, self.port = host, port
        self.tls = tls
        self.settings = Settings()
        self.registry = Registry()
        self.store = Store(self.registry, history_size)
        self.faults = Faults()
        self.admission = Admission(self.store)
        self.tokens = Tokens(self._pod_uid)
        self.streams: set[WatchStream] = set()
        self.encodings = Encodings()
        self.requests: list[tuple[str, str]] = []  # (method, path with query), in arrival order
        self.body_types: list[tuple[str, str]] = []  # (path, Content-Type) of requests with bodies
        self.ca_pem = b""
        self._runner: web.AppRunner | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.store.listeners.append(self._react)
        self.ns_type = self.type("v1", "Namespace")
        for ns in SYSTEM_NAMESPACES:
            self.create(self.ns_type, {"metadata": {"name": ns}})

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> Self:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", Handlers(self).handle)
        # handler_cancellation: a client that hangs up on a watch ends its handler at once.
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self._ssl())
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for stream in list(self.streams):
            stream.end()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _ssl(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        from .certs import self_signed

        cert_pem, key_pem = self_signed(
            "kubernetes", ["kubernetes", "kubernetes.default", "kubernetes.default.svc",
                           "kubernetes.default.svc.cluster.local", "localhost"],
            [ipaddress.ip_address(self.host)],
        )  # fmt: skip
        self.ca_pem = cert_pem
        self._tmp = tempfile.TemporaryDirectory(prefix="kubeapi-tls-")
        cert, key = Path(self._tmp.name, "tls.crt"), Path(self._tmp.name, "tls.key")
        cert.write_bytes(cert_pem)
        key.write_bytes(key_pem)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        return ctx

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def version_info(self) -> Obj:
        v = self.settings.git_version
        major, minor = v.lstrip("v").split(".")[:2]
        return {"major": major, "minor": minor, "gitVersion": v, "gitCommit": "fake",
                "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "go1.23.0", "compiler": "gc", "platform": "linux/amd64"}  # fmt: skip

    def authenticate(self, header: str) -> Obj:
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        info = self.tokens.lookup(token) if token else None
        if info is not None:
            return info.user()
        if self.settings.require_auth:
            raise ApiError.unauthorized()
        return ADMIN

    # -- the controllers a cluster runs -------------------------------------------------------

    def _react(self, change: Change) -> None:
        group, plural = change.key
        if (group, plural) == ("apiextensions.k8s.io", "customresourcedefinitions"):
            spec = change.obj.get("spec") or {}
            names = spec.get("names") or {}
            if change.type == "DELETED":
                key = (spec.get("group", ""), names.get("plural", ""))
                self.store.drop_type(key)
                self.registry.unregister_crd(*key)
                self.encodings.forget(key)
            else:
                self.registry.register_crd(change.obj)
        elif (group, plural) == ("", "namespaces") and change.type == "ADDED":
            ns = change.obj["metadata"]["name"]
            sa = self.type("v1", "ServiceAccount")
            if self.store.find(sa, ns, "default") is None:
                self.create(sa, {"metadata": {"name": "default", "namespace": ns}})
        elif change.type == "DELETED" and (
            ns := (change.obj.get("metadata") or {}).get("namespace")
        ):
            self._reap_namespace(ns)

    def _pod_uid(self, namespace: str, name: str) -> str | None:
        pod = self.store.bucket(("", "pods")).get((namespace, name))
        return None if pod is None else str(pod["metadata"].get("uid"))

    def terminate_namespace(self, name: str) -> Obj:
        """What the namespace controller does: mark Terminating, delete the contents (their
        finalizers honoured), remove the namespace once nothing is left in it."""
        ns = self.store.get(self.ns_type, "", name)
        if not ns["metadata"].get("deletionTimestamp"):
            new = clone(ns)
            new["metadata"]["deletionTimestamp"] = now()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new["status"] = {"phase": "Terminating"}
            ns = self.store.update(self.ns_type, new, None)
        handlers = Handlers(self)
        for rt in self._stored_types():
            if not rt.namespaced:
                continue
            for (obj_ns, obj_name), _ in list(self.store.bucket(rt.key).items()):
                if obj_ns == name:
                    handlers.delete_object(rt, obj_ns, obj_name, {})
        self._reap_namespace(name)
        return self.store.find(self.ns_type, "", name) or ns

    def _reap_namespace(self, name: str) -> None:
        ns = self.store.find(self.ns_type, "", name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        for rt in self._stored_types():
            if rt.namespaced and any(k[0] == name for k in self.store.bucket(rt.key)):
                return
        self.store.remove(self.ns_type, "", name)

    def _stored_types(self) -> list[ResourceType]:
        seen: dict[tuple[str, str], ResourceType] = {}
        for rt in self.registry:
            seen.setdefault(rt.key, rt)
        return list(seen.values())

    # -- controls for tests (call on the server's loop) ---------------------------------------

    def type(self, api_version: str, kind: str) -> ResourceType:
        rt = self.registry.by_kind(api_version, kind)
        if rt is None:
            raise KeyError(f"no resource type {api_version} {kind}")
        return rt

    def create(self, rt: ResourceType | None, obj: Obj) -> Obj:
        """Store an object directly (no admission), with the server's metadata and defaults."""
        if rt is None:
            rt = self.type(obj["apiVersion"], obj["kind"])
        ns = (obj.get("metadata") or {}).get("namespace", "default") if rt.namespaced else ""
        prepared = stamp(prepare_create(rt, check_body(rt, obj, ns)))
        return self.store.create(rt, prepared)

    def objects(self, api_version: str, kind: str, namespace: str | None = None) -> list[Obj]:
        rt = self.type(api_version, kind)
        return [o for (ns, _), o in sorted(self.store.bucket(rt.key).items())
                if namespace is None or ns == namespace]  # fmt: skip

    def get(self, api_version: str, kind: str, name: str, namespace: str = "") -> Obj | None:
        return self.store.find(self.type(api_version, kind), namespace, name)

    def set_history_size(self, n: int) -> None:
        """Keep only the last ``n`` changes: older resourceVersions get 410 Expired."""
        self.store.set_history_size(n)

    def compact(self) -> None:
        """Forget all history now (as etcd compaction does)."""
        self.store.compact()

    def end_watches(self) -> int:
        """End every open watch cleanly (as the server does at its timeout)."""
        for s in list(self.streams):
            s.end()
        return len(self.streams)

    def drop_watches(self) -> int:
        """Cut every open watch's connection without a clean end of stream."""
        for s in list(self.streams):
            s.abort()
        return len(self.streams)

    def expire_watches(self) -> int:
        """Send every open watch ERROR 410 Expired and end it; history is compacted too, so
        re-watching from the last RV also gets 410 and the client must relist."""
        self.store.compact()
        for s in list(self.streams):
            s.fail(ApiError.expired(f"too old resource version: ({self.store.rv})").body)
        return len(self.streams)

    def add_fault(self, fault: Fault) -> Fault:
        return self.faults.add(fault)

    def fail_requests(self, count: int | None = 1, code: int = 500, **match: Any) -> Fault:
        """The next ``count`` matching requests get ``code`` (500 InternalError by default)."""
        return self.faults.add(Fault("error", code=code, count=count, **match))

    def delay_requests(self, seconds: float, count: int | None = None, **match: Any) -> Fault:
        return self.faults.add(Fault("delay", seconds=seconds, count=count, **match))

    def add_token(self, token: str, username: str, groups: tuple[str, ...] = (),
                  audiences: tuple[str, ...] | None = None, uid: str = "") -> None:  # fmt: skip
        info = TokenInfo(username=username, uid=uid, groups=groups,
                         audiences=audiences or self.tokens.api_audiences)  # fmt: skip
        self.tokens.add(token, info)

    def issue_token(self, namespace: str, service_account: str, audiences: tuple[str, ...] = (),
                    pod: str | None = None, expiration_seconds: int = 3600) -> str:  # fmt: skip
        """A service-account JWT as TokenRequest would give (bound to ``pod`` if named)."""
        sa = self.get("v1", "ServiceAccount", service_account, namespace)
        bound = None
        if pod is not None:
            p = self.get("v1", "Pod", pod, namespace)
            if p is None:
                raise KeyError(f"no pod {namespace}/{pod}")
            bound = (pod, str(p["metadata"]["uid"]))
        sa_uid = str((sa or {}).get("metadata", {}).get("uid", ""))
        return self.tokens.issue(
            namespace, service_account, audiences, expiration_seconds, sa_uid=sa_uid, pod=bound
        )

    def map_service(self, namespace: str, name: str, host: str, port: int) -> None:
        """Where webhook calls to service ``name.namespace.svc`` go."""
        self.admission.service_addresses[(namespace, name)] = (host, port)
