"""One control-plane process: config directory in, ADS out, admin HTTP beside it.

Changes flow one way: the directory source names the files that changed, the debouncer waits
for the burst to end, the pipeline (engine/pipeline.py) turns those files' changes into a new
generation and a `PushRequest`, and the ADS server pushes to every stream what changed for it.
This module does the I/O around the pure pipeline: reading files, serving, lifecycle.

With Kubernetes (controlplane/kubernetes.py) the informers are a second source beside the
files (or the only one): their custom objects arrive as changes for the same store, their
Services and EndpointSlices as the registry, and the first generation is built only once
every informer has synced, so no proxy is ever served a half-listed mesh.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from shoal.api import Change, ConfigError, ConfigStore, Resource
from shoal.ca.authority import CertificateAuthority
from shoal.controlplane.admin import start_admin
from shoal.controlplane.autoregister import DEFAULT_GRACE_S, AutoRegistry
from shoal.controlplane.heap import HeapPolicy
from shoal.controlplane.kubernetes import KubeSettings, KubeSide
from shoal.controlplane.reloads import Debouncer
from shoal.controlplane.security import MeshSecurity
from shoal.controlplane.webhooks import Webhooks
from shoal.engine import Pipeline
from shoal.kube.inject import InjectorSettings
from shoal.model import Credential, MeshSnapshot, RegistryInstance
from shoal.model.vips import LocalVips
from shoal.sources.directory import Changes, DirCache, read_changes, watch_dir
from shoal.sources.filetext import DEFAULT_MAX_FILE_BYTES
from shoal.sources.jwks import DEFAULT_REFRESH_S, JwksCache
from shoal.sources.parseworker import ParseWorker
from shoal.sources.policyfiles import read_policy_files
from shoal.sources.secrets import SECRETS_DIR, read_credentials
from shoal.telemetry import cpmetrics
from shoal.xds.server import AdsServer

log = logging.getLogger("shoal.controlplane")


@dataclass(frozen=True)
class Settings:
    config_dir: Path | None  # None: no file source (Kubernetes only)
    # where config documents naming no namespace belong, unless their folder says
    # (sources/namespaces.py)
    namespace: str = "default"
    # how often the keys of http(s) jwksUris are fetched again (sources/jwks.py)
    jwks_refresh_s: float = DEFAULT_REFRESH_S
    host: str = "127.0.0.1"
    xds_port: int = 15010
    admin_port: int = 15014
    debounce_s: float = 0.1
    # A steady stream of changes (endpoints churning) still pushes twice a second: a reload
    # after an endpoint edit costs tens of ms, so waiting longer would only add latency.
    max_debounce_s: float = 0.5
    test_hooks: bool = False
    # secure mode: CA in ca_dir, TLS and tokens on the xDS port (see controlplane/security.py)
    secure: bool = False
    ca_dir: Path | None = None
    cert_ttl_s: float = 24 * 3600.0
    # the xDS/CA port's own certificate; renewed at half-life for new handshakes
    serving_cert_ttl_s: float = 30 * 24 * 3600.0
    # admission webhooks (sidecar injection, validation) over HTTPS on this port (Istio's
    # 15017); None: not served. Needs the CA (ca_dir) for the serving certificate.
    webhook_port: int | None = None
    injector: InjectorSettings = field(default_factory=InjectorSettings)
    # the Kubernetes source (informers, TokenReview, Lease); None: files only
    kubernetes: KubeSettings | None = None
    # config files larger than this are refused unread (an error of that file)
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    # `shoal up --netns`: LocalWorkload services get addresses from this range (model/vips.py)
    local_vips: str | None = None
    # more addresses the xDS port listens on (the pods' bridge), beside `host`
    xds_extra_hosts: tuple[str, ...] = ()
    # auto-registered WorkloadEntries outlive their proxy's stream this long (Istio's
    # PILOT_WORKLOAD_ENTRY_GRACE_PERIOD)
    workload_entry_grace_s: float = DEFAULT_GRACE_S
    # the xDS port pings every stream this often, and closes it when a ping goes unanswered
    # for `xds_keepalive_timeout_s` (a host whose network went away; Istio: 30 s and 10 s)
    xds_keepalive_s: float = 30.0
    xds_keepalive_timeout_s: float = 10.0


# Reloads whose changed files hold this much text have their YAML loaded in the child.
PARSE_ASIDE_BYTES = 64 * 1024
# what one reload read from the config directory: its changes, and the gateway credentials
# when they may have changed (None: they did not)
FileRead = tuple[list[Change], dict[str, Credential] | None]


def new_boot_id() -> str:
    """Prefix for every version this process sends: never reused across restarts."""
    return f"{int(time.time() * 1000):x}{os.getpid() & 0xFFFF:04x}"


class ControlPlane:
    """Config directory and registry in, snapshots out to the ADS server."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.boot_id = new_boot_id()
        self.pipeline = Pipeline(
            self.boot_id,
            policy_files=self._read_policy_files,
            local_vips=LocalVips(settings.local_vips) if settings.local_vips else None,
        )
        self.ads = AdsServer(self.boot_id)
        self.ads.keepalive_s = settings.xds_keepalive_s
        self.ads.keepalive_timeout_s = settings.xds_keepalive_timeout_s
        self.instances: tuple[RegistryInstance, ...] = ()
        # called with every new snapshot (e.g. `shoal up` reconciles its replicas)
        self.listeners: list[Callable[[MeshSnapshot], None]] = []
        # extra JSON views served at /debug/<name> (e.g. `shoal up` adds "workloads")
        self.debug_views: dict[str, Callable[[], object]] = {}
        self.xds_port = settings.xds_port
        self.stopping = asyncio.Event()
        self._files_dirty = True
        # keys of http(s) jwksUris, fetched off the reload path; a change re-reads policy files
        self.jwks = JwksCache(self._jwks_changed, settings.jwks_refresh_s)
        self._policy_dirty = False
        self._jwks_task: asyncio.Task[None] | None = None
        # files the watcher said changed since the last reload; None: scan the whole folder
        self._changed_files: set[str] | None = None
        self._dir_cache = DirCache(max_bytes=settings.max_file_bytes)
        self._heap = HeapPolicy()
        self._debouncer = Debouncer(
            settings.debounce_s, settings.max_debounce_s, self._reload, busy=self.ads.fanning_out
        )
        # reloads read and parse files in a thread, big files' YAML in a child process
        self._parse_worker = ParseWorker()
        self._reload_task: asyncio.Task[None] | None = None
        self._reload_again = False
        self._watcher: asyncio.Task[None] | None = None
        self._admin: web.AppRunner | None = None
        self.kube: KubeSide | None = None
        if settings.kubernetes is not None:
            self.kube = KubeSide(settings.kubernetes, self._debouncer.trigger)
            self.debug_views["kubernetes"] = self.kube.describe
        self.security: MeshSecurity | None = None
        if settings.secure:
            if settings.ca_dir is None:
                raise ValueError("secure mode needs a CA directory")
            self.security = MeshSecurity(
                settings.ca_dir,
                cert_ttl_s=settings.cert_ttl_s,
                serving_lifetime=dt.timedelta(seconds=settings.serving_cert_ttl_s),
                reviewer=self.kube.reviewer.authenticate if self.kube is not None else None,
            )
            self.security.install(self.ads)
            self.debug_views["ca"] = self.security.describe
            if self.kube is not None:
                self.kube.set_roots("".join(self.security.ca.roots_pem))
        self.webhooks: Webhooks | None = None
        if settings.webhook_port is not None:
            if settings.ca_dir is None:
                raise ValueError("the admission webhooks need a CA directory")
            ca = (
                self.security.ca
                if self.security is not None
                else CertificateAuthority(settings.ca_dir)
            )
            self.webhooks = Webhooks(ca, settings.injector)
            self.debug_views["webhooks"] = self.webhooks.describe
        # workloads of other hosts joining their WorkloadGroup (Istio's auto-registration)
        self.autoregister = AutoRegistry(
            self._group,
            self._debouncer.trigger,
            grace_s=settings.workload_entry_grace_s,
            authenticate=self.security.authenticate if self.security is not None else None,
        )
        self.ads.on_connect.append(self.autoregister.on_connect)
        self.ads.on_disconnect.append(self.autoregister.on_disconnect)
        self.ads.syncz_extra.append(self.autoregister.syncz)
        self.ads.extra_handlers.append(self.autoregister.handler())
        self.debug_views["autoregister"] = self.autoregister.describe
        # config errors and certificates on /metrics beside the xDS series
        service = self.security.service if self.security is not None else None
        cpmetrics.register(
            self.ads.metrics.registry,
            cpmetrics.ControlPlaneCollector(
                lambda: (e.kind for e in self.errors),
                issued=(lambda: service.issued) if service is not None else None,
                refused=(lambda: service.refused) if service is not None else None,
            ),
        )

    # ------------------------------------------------------------------ events
    def config_changed(self, changes: Changes = None) -> None:
        """Files changed: the ones named, or (None) any file under the config directory."""
        if changes is None:
            self._changed_files = None
        elif self._changed_files is not None or not self._files_dirty:
            self._changed_files = (self._changed_files or set()) | changes
        self._files_dirty = True
        self._debouncer.trigger()

    @property
    def store(self) -> ConfigStore:
        return self.pipeline.store

    @property
    def snapshot(self) -> MeshSnapshot | None:
        return self.pipeline.snapshot

    @property
    def errors(self) -> tuple[ConfigError, ...]:
        return self.pipeline.errors

    def _group(self, namespace: str, name: str) -> Resource | None:
        """The WorkloadGroup `namespace/name` of the current config, if any."""
        for res in self.store.resources:
            if res.kind == "WorkloadGroup" and res.key[1:] == (namespace, name):
                return res
        return None

    def _take_changed(self) -> set[str] | None:
        """What the watcher named since the last reload (None: scan the whole folder)."""
        self._files_dirty = False
        changed, self._changed_files = self._changed_files, None
        return changed

    def _read_changes(self, changed: set[str] | None) -> FileRead:
        """The config files' changes since the last reload, and the gateway credentials
        when a file under secrets/ may have changed (None: they did not)."""
        root = self.settings.config_dir
        if root is None:
            return [], None
        first = not self._dir_cache.entries
        changes = read_changes(root, self._dir_cache, changed, self.settings.namespace)
        secrets = (
            changed is None or first or any(Path(p).parts[:1] == (SECRETS_DIR,) for p in changed)
        )
        return changes, read_credentials(root) if secrets else None

    def _read_policy_files(self, resources: tuple[Resource, ...]) -> dict[str, str]:
        root = self.settings.config_dir
        files = read_policy_files(root, resources) if root is not None else {}
        return {**files, **self.jwks.files(resources)}

    def _jwks_changed(self) -> None:
        self._policy_dirty = True
        self._debouncer.trigger()

    def set_instances(self, instances: Iterable[RegistryInstance]) -> None:
        """Replace the registry's workload instances (local replicas); pushes after debounce."""
        self.instances = tuple(instances)
        self._debouncer.trigger()

    def _read_and_prepare(self, changed: set[str] | None) -> FileRead:
        """In a worker thread: read the changed files and parse them ahead of `apply`, the
        YAML of big ones in the child process (`parseworker.py`), so that neither the admin
        API nor an xDS stream waits for a parse. Small edits are left to `apply`: parsing a
        few kilobytes costs less than the trip to the child."""
        changes, credentials = self._read_changes(changed)
        if sum(len(c.text) for c in changes if c.text is not None) >= PARSE_ASIDE_BYTES:
            try:
                self.store.prepare(changes, self._parse_worker.load)
            except (OSError, EOFError) as err:  # the child died: apply parses here instead
                log.warning("YAML worker failed (%s); parsing in the control plane", err)
        return changes, credentials

    def _reload(self) -> None:
        """The debouncer's action: one reload at a time, its reading and parsing off the
        event loop; a trigger while one runs makes it run again after."""
        if self.kube is not None and not self.kube.source.synced:
            # informer events during the first LISTs: `start` builds the first generation
            # once every type is listed. Building meanwhile would cost a full build per
            # debounce of a half-listed mesh (VirtualServices naming Services not listed
            # yet are errors, and Events on them) and slow the sync it waits for.
            return
        if self._reload_task is not None and not self._reload_task.done():
            self._reload_again = True
            return
        self._reload_task = asyncio.get_running_loop().create_task(self._reload_off_loop())

    async def _reload_off_loop(self) -> None:
        while True:
            self._reload_again = False
            read = None
            if self._files_dirty:
                read = await asyncio.to_thread(self._read_and_prepare, self._take_changed())
            self.apply(read)
            if not self._reload_again:
                return

    def apply(self, read: FileRead | None = None) -> None:
        """Push a new generation if anything changed: with `read` (files read and parsed
        off the loop by `_reload`), else re-reading what the watcher named right here."""
        started = time.perf_counter()
        changes: list[Change] = []
        credentials: dict[str, Credential] | None = None
        reread = read is not None or self._files_dirty or self._policy_dirty
        self._policy_dirty = False
        if read is not None:
            changes, credentials = read
        elif self._files_dirty:
            changes, credentials = self._read_changes(self._take_changed())
        changes += self.autoregister.take_changes()
        registry = namespaces = None
        if self.kube is not None:
            source = self.kube.source
            changes += source.take_changes()
            if source.registry_changed or self.pipeline.generation is None:
                source.take_hosts()
                registry = dict(source.services)
            namespaces = source.namespaces.keys()
        known = self.errors
        generation, push = self.pipeline.apply(
            changes,
            instances=self.instances,
            credentials=credentials,
            reread_files=reread,
            registry=registry,
            registry_namespaces=namespaces,
        )
        if self.kube is not None:
            self.kube.config_applied(self.errors, self.pipeline.store.resources)
        for err in self.errors:
            if err not in known:
                log.error("%s", err)
        if push.empty:
            return
        snapshot = generation.snapshot
        self.ads.update(generation, push)
        self.ads.metrics.generation.observe(time.perf_counter() - started)
        log.info(
            "snapshot %s: %d services, %d instances, built in %.1f ms",
            snapshot.version,
            len(snapshot.services),
            len(self.instances),
            (time.perf_counter() - started) * 1000,
        )
        for listener in self.listeners:
            listener(snapshot)
        self._heap.after_reload()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        s = self.settings
        if self.kube is not None:
            await self.kube.start()
            log.info("waiting for the Kubernetes informers to sync")
            await self.kube.source.wait_synced()
            log.info(
                "Kubernetes informers synced in %.2f s", self.kube.source.synced_after_s or 0.0
            )
        self.apply()
        self.xds_port = await self.ads.start(s.host, s.xds_port, also=s.xds_extra_hosts)
        self._admin = await start_admin(self, s.host, s.admin_port)
        if self.webhooks is not None and s.webhook_port is not None:
            port = await self.webhooks.start(s.host, s.webhook_port)
            log.info("admission webhooks (HTTPS) on %s:%d", s.host, port)
        log.info(
            "xDS%s on %s:%d, admin on %s:%d",
            " (TLS, tokens, CA)" if self.security is not None else "",
            s.host,
            self.xds_port,
            s.host,
            s.admin_port,
        )
        log.info("dashboard: http://%s:%d/dashboard/ (or `shoal dashboard`)", s.host, s.admin_port)
        self._jwks_task = asyncio.create_task(self.jwks.run(self.stopping))
        if s.config_dir is not None:
            self._watcher = asyncio.create_task(
                watch_dir(str(s.config_dir), self.config_changed, self.stopping, self._dir_cache)
            )
        if any(len(text) >= PARSE_ASIDE_BYTES for text in self._dir_cache.files().values()):
            self._parse_worker.start()  # a big file is there: its edits go to the YAML child

    async def stop(self) -> None:
        log.info("stopping")
        self.stopping.set()
        if self._reload_task is not None:
            self._reload_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reload_task
        self._parse_worker.close()
        if self._watcher is not None:
            await self._watcher
        if self._jwks_task is not None:
            self._jwks_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._jwks_task
        if self._admin is not None:
            await self._admin.cleanup()
        if self.webhooks is not None:
            await self.webhooks.stop()
        if self.kube is not None:
            await self.kube.stop()
        await self.ads.stop(grace=0.5)

    async def run(self) -> None:
        """Serve until SIGTERM or SIGINT."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        await self.start()
        try:
            await self.stopping.wait()
        finally:
            await self.stop()
