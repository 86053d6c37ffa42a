"""`Pipeline.apply(changes) -> (generation, push request)`: one pure path from sources to views.

Before this, the control plane, `shoal analyze`, the benchmarks and about ten test files each
wired store -> snapshot -> generator by hand, and each layer rediscovered what changed by
comparing its inputs. Here the change set goes in once and a `PushRequest` comes out beside
the new generation: the xDS server wakes streams and the generator rebuilds by it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from types import MappingProxyType
from typing import NamedTuple

from shoal.api import Change, ConfigError, ConfigStore, Resource
from shoal.generate import ConfigGenerator
from shoal.model import Credential, MeshSnapshot, PushRequest, RegistryInstance, build_snapshot
from shoal.model.build import SnapshotMemo
from shoal.model.push import CREDENTIAL, INSTANCE, NOTHING, POLICY_FILE, REGISTRY, push_request
from shoal.model.snapshot import Service
from shoal.model.vips import LocalVips

# Reads the local files the config names (control plane: sources/policyfiles.py); pure
# callers pass none and get no files.
PolicyFileReader = Callable[[tuple[Resource, ...]], Mapping[str, str]]


class Build(NamedTuple):
    """The outcome of one `Pipeline.apply`: the current generation and what changed (empty:
    nothing a proxy could see; the generation is then the previous one)."""

    generation: ConfigGenerator
    push: PushRequest

    @property
    def snapshot(self) -> MeshSnapshot:
        return self.generation.snapshot


class Pipeline:
    """Store, snapshot builder and generator of one control plane (or test, or benchmark)."""

    def __init__(
        self,
        version_prefix: str = "",
        *,
        policy_files: PolicyFileReader | None = None,
        known_hosts: Mapping[str, Collection[int]] | None = None,
        local_vips: LocalVips | None = None,
    ) -> None:
        self.store = ConfigStore(known_hosts=known_hosts)
        self._prefix = version_prefix
        self._policy_files = policy_files
        self._seq = 0
        self._memo = SnapshotMemo()  # what the snapshot builder carries between builds
        # addresses for LocalWorkload services (`shoal up --netns`), kept for the run
        self.local_vips = local_vips
        self.generation: ConfigGenerator | None = None
        self.errors: tuple[ConfigError, ...] = ()
        self.instances: tuple[RegistryInstance, ...] = ()
        self.credentials: Mapping[str, Credential] = MappingProxyType({})
        self.files: Mapping[str, str] = MappingProxyType({})
        # services of another registry (Kubernetes) and the namespaces it knows
        self.registry: Mapping[str, Service] = MappingProxyType({})
        self.registry_namespaces: frozenset[str] = frozenset()
        self._registry_ports: dict[str, tuple[int, ...]] = {}

    @property
    def snapshot(self) -> MeshSnapshot | None:
        return self.generation.snapshot if self.generation is not None else None

    def _version(self) -> str:
        self._seq += 1
        return f"{self._prefix}.{self._seq}" if self._prefix else str(self._seq)

    def apply(
        self,
        changes: Iterable[Change] = (),
        *,
        instances: Iterable[RegistryInstance] | None = None,
        credentials: Mapping[str, Credential] | None = None,
        reread_files: bool = False,
        registry: Mapping[str, Service] | None = None,
        registry_namespaces: Iterable[str] | None = None,
    ) -> Build:
        """Move on by `changes` (and the registry's `instances`, gateway `credentials`, when
        given: None means unchanged). The first call always builds a generation. The files
        policies name are read again after any change, or when `reread_files` says so (they
        are not watched: a config reload is when they are looked at).

        `registry` (services by hostname, e.g. from Kubernetes, endpoints included) and
        `registry_namespaces` replace what the other registry held; None: unchanged."""
        changes = list(changes)
        other: list[str] = []
        if registry_namespaces is not None:
            namespaces = frozenset(registry_namespaces)
            if namespaces != self.registry_namespaces:
                other.append(REGISTRY)
                self.registry_namespaces = namespaces
        if registry is not None:
            self.registry = MappingProxyType(dict(registry))
            other.append(REGISTRY)
            ports = {h: tuple(p.number for p in s.ports) for h, s in registry.items()}
            if ports != self._registry_ports:  # VirtualServices may name these hosts
                self._registry_ports = ports
                self.store.set_known_hosts(ports)
        result = self.store.apply(changes)
        self.errors = result.errors
        if instances is not None:
            instances = tuple(instances)
            if instances != self.instances:
                other.append(INSTANCE)
                self.instances = instances
        if credentials is not None and credentials != self.credentials:
            other.append(CREDENTIAL)
            self.credentials = MappingProxyType(dict(credentials))
        first = self.generation is None
        if (changes or reread_files or first) and self._policy_files is not None:
            files = self._policy_files(result.resources)
            if files != self.files:
                other.append(POLICY_FILE)
                self.files = MappingProxyType(dict(files))
        previous = self.generation
        if previous is not None and not result.delta and not other:
            return Build(previous, NOTHING)
        snapshot = build_snapshot(
            self._version(),
            result.resources,
            self.instances,
            errors=self.errors,
            credentials=self.credentials,
            files=self.files,
            registry=self.registry,
            registry_namespaces=self.registry_namespaces,
            memo=self._memo,
            local_vips=self.local_vips,
        )
        push = push_request(
            previous.snapshot if previous is not None else None,
            snapshot,
            result.delta,
            other_kinds=other,
        )
        self.generation = ConfigGenerator(snapshot, previous=previous, push=push)
        return Build(self.generation, push)

    def fork(self) -> Pipeline:
        """A pipeline where this one is, to try a change on (`shoal diff`): applying to the
        fork builds the generation the change would make, and leaves this one as it was."""
        out = Pipeline(self._prefix, policy_files=self._policy_files, local_vips=self.local_vips)
        out.store = self.store.fork()
        out._seq = self._seq
        out.generation = self.generation
        out.errors = self.errors
        out.instances = self.instances
        out.credentials = self.credentials
        out.files = self.files
        out.registry = self.registry
        out.registry_namespaces = self.registry_namespaces
        out._registry_ports = dict(self._registry_ports)
        return out

    def load(self, files: Mapping[str, str]) -> Build:
        """`apply` with every file's text (path -> text): files not given are deleted."""
        return self.apply(self.store.replacing(files))
