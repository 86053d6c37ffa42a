"""The config store: the last good configuration, kept across reloads of the files.

It moves on by change sets (`apply`, see api/changes.py): a changed file is split into
documents and only the documents whose text changed are parsed again (api/documents.py); a
decoded object (Kubernetes) is validated on its own. Every apply answers what the accepted
configuration is now, every error, and the `ConfigDelta` from the previous accepted set, so
later layers are told what changed instead of finding out by comparison.

"Bad input loses nothing": when a file stops parsing, or a document in it stops
validating, or a resource stops fitting with the others, the mesh keeps running on
what it had before for that part, and the rest moves on. Errors are reported on every
update, not only on the one that introduced them, so a status endpoint can show them
until they are fixed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from shoal.api.changes import Change, replace_all
from shoal.api.conflicts import settle_conflicts
from shoal.api.documents import DocumentCache
from shoal.api.errors import ConfigError
from shoal.api.load import FileResult, Loaded, parse_object
from shoal.api.resource import Resource, ResourceKey
from shoal.api.validate import validate_references

# loads YAML texts of one file (`api.load.load_texts`, or the same in another process)
TextLoader = Callable[[str, Sequence[str]], list[Loaded]]

_KEPT = "; keeping its last good version"
_KEPT_FILE = "; keeping the resources of this file's last good version"


def _no_resources() -> Mapping[ResourceKey, Resource]:
    return MappingProxyType({})


@dataclass(frozen=True)
class ConfigDelta:
    """How the accepted configuration differs from the previous one, by resource key:
    `before` holds the previous version of every changed or removed resource, `after` the
    new version of every changed or added one. A resource that only moved (to another line
    or file) compares equal and is not in the delta."""

    before: Mapping[ResourceKey, Resource] = field(default_factory=_no_resources)
    after: Mapping[ResourceKey, Resource] = field(default_factory=_no_resources)

    @property
    def keys(self) -> frozenset[ResourceKey]:
        return frozenset(self.before.keys() | self.after.keys())

    def __bool__(self) -> bool:
        return bool(self.before or self.after)


@dataclass(frozen=True)
class StoreResult:
    resources: tuple[Resource, ...]  # sorted by key
    errors: tuple[ConfigError, ...]  # sorted
    delta: ConfigDelta = field(default_factory=ConfigDelta)

    @property
    def changed(self) -> bool:
        return bool(self.delta)


def _delta(
    before: Mapping[ResourceKey, Resource], after: Mapping[ResourceKey, Resource]
) -> ConfigDelta:
    # unchanged documents keep their objects (api/documents.py), so this is mostly `is`
    old: dict[ResourceKey, Resource] = {}
    new: dict[ResourceKey, Resource] = {}
    for key, resource in after.items():
        previous = before.get(key)
        if previous is resource:
            continue
        if previous is None or previous != resource:
            new[key] = resource
            if previous is not None:
                old[key] = previous
    for key in before.keys() - after.keys():
        old[key] = before[key]
    return ConfigDelta(MappingProxyType(old), MappingProxyType(new))


def _note(error: ConfigError, suffix: str) -> ConfigError:
    return dataclasses.replace(error, message=error.message + suffix)


class ConfigStore:
    """Holds the accepted configuration; `apply` a change set to move it on (`update` with
    every file's text does the same for callers that hold them all)."""

    def __init__(self, known_hosts: Mapping[str, Collection[int]] | None = None) -> None:
        # The resources each file contributed last time (after keeping last-good
        # versions of its invalid documents): what a file that stops parsing keeps.
        self._file_candidates: dict[str, list[Resource]] = {}
        self._accepted: dict[ResourceKey, Resource] = {}
        self._last: tuple[Resource, ...] = ()
        self._known_hosts = known_hosts
        # source -> its parse result and its documents by text: an edit re-parses the
        # documents it touched, not the whole file, let alone the whole folder
        self._parsed: dict[str, FileResult] = {}
        self._documents: dict[str, DocumentCache] = {}
        # the last result while nothing it depends on changed (no change, same known hosts):
        # an apply without changes (only a registry's endpoints moved) returns it at once
        # instead of resolving every reference again (~100-250 ms at 1,500 resources)
        self._settled: StoreResult | None = None

    @property
    def resources(self) -> tuple[Resource, ...]:
        return self._last

    def _candidates(
        self, result: FileResult, provided: Collection[ResourceKey]
    ) -> tuple[list[Resource], list[ConfigError]]:
        """The resources `result` offers, with last-good versions of refused documents
        whose key no valid document (`provided`) defines: a broken second definition of a
        resource in force must not come back as a copy of the one in force."""
        if result.syntax_error is not None:
            kept = self._file_candidates.get(result.file, [])
            suffix = _KEPT_FILE if kept else ""
            return list(kept), [_note(result.syntax_error, suffix)]
        candidates: list[Resource] = []
        errors: list[ConfigError] = []
        for doc in result.documents:
            if doc.resource is not None:
                candidates.append(doc.resource)
                continue
            previous = self._accepted.get(doc.key) if doc.key is not None else None
            if previous is not None and doc.key not in provided:
                candidates.append(previous)
                errors += [_note(e, _KEPT) for e in doc.errors]
            else:
                errors += doc.errors
        return candidates, errors

    def _resolve(self, candidates: list[Resource]) -> tuple[list[Resource], list[ConfigError]]:
        """validate_references, falling back to last-good versions of refused resources.

        A refused resource is swapped for its last accepted version (if different) and
        everything is checked again; a resource whose fallback fails too is dropped.
        Each key falls back at most once, so this ends within len(candidates) rounds.
        """
        accepted, errors = validate_references(candidates, known_hosts=self._known_hosts)
        first_errors = list(errors)
        fell_back: set[ResourceKey] = set()
        for _ in range(len(candidates) + 1):
            accepted_keys = {r.key for r in accepted}
            accepted_ids = set(map(id, accepted))
            refused = [r for r in candidates if id(r) not in accepted_ids]
            swaps: dict[int, Resource] = {}
            for resource in refused:
                previous = self._accepted.get(resource.key)
                if (
                    resource.key in accepted_keys
                    or resource.key in fell_back
                    or previous is None
                    or previous is resource
                ):
                    continue
                swaps[id(resource)] = previous
                fell_back.add(resource.key)
            if not swaps:
                break
            refused_ids = {id(r) for r in refused}
            candidates = [
                swaps.get(id(r), r)
                for r in candidates
                if id(r) not in refused_ids or id(r) in swaps
            ]
            accepted, _ = validate_references(candidates, known_hosts=self._known_hosts)
        kept = {r.key for r in accepted} & fell_back
        noted = [
            _note(e, _KEPT) if (e.kind, *e.name.split("/", 1)) in kept else e for e in first_errors
        ]
        return accepted, noted

    def _parse(self, change: Change) -> FileResult:
        if change.data is not None:
            result = parse_object(change.source, change.data)
            return FileResult(change.source, None, (result,))
        assert change.text is not None
        return self._cache(change).parse(change.source, change.text)

    def _cache(self, change: Change) -> DocumentCache:
        cache = self._documents.get(change.source)
        if cache is None or cache.namespace != change.namespace:
            cache = self._documents[change.source] = DocumentCache(namespace=change.namespace)
        return cache

    def prepare(self, changes: Iterable[Change], load: TextLoader) -> None:
        """Parse the documents of `changes` ahead of `apply` (which then finds them parsed),
        loading the YAML of new pieces through `load` (`load_texts`'s contract). A control
        plane calls this in a worker thread with a `load` that runs in another process, so
        its event loop keeps answering while a big file parses. Accepts nothing: only
        `apply` moves the configuration on."""
        for change in changes:
            if change.text is None:
                continue
            cache = self._cache(change)
            if cache.parsed_text(change.text):
                continue
            pieces = cache.new_pieces(change.text)
            loaded = dict(zip(pieces, load(change.source, pieces), strict=True))
            if any(isinstance(docs, ConfigError) for docs in loaded.values()):
                # a piece that does not load alone is parsed with its whole file
                (loaded[change.text],) = load(change.source, [change.text])
            cache.parse(change.source, change.text, loaded)

    def fork(self) -> ConfigStore:
        """A store holding what this one holds, moving on independently (`shoal diff`): the
        maps are copied, resources shared (immutable), document caches left behind (a cache
        is mutated by parsing; the fork parses the files it is given afresh)."""
        out = ConfigStore(self._known_hosts)
        out._file_candidates = {k: list(v) for k, v in self._file_candidates.items()}
        out._accepted = dict(self._accepted)
        out._last = self._last
        out._parsed = dict(self._parsed)
        return out

    def set_known_hosts(self, known_hosts: Mapping[str, Collection[int]]) -> None:
        """Services of other registries (host -> port numbers), checked against from the next
        `apply` on: a VirtualService refused for naming a Kubernetes Service that did not
        exist yet is accepted once it does."""
        self._known_hosts = known_hosts
        self._settled = None

    @property
    def sources(self) -> frozenset[str]:
        """Every unit (file, object) the store currently holds."""
        return frozenset(self._parsed)

    def replacing(self, files: Mapping[str, str]) -> list[Change]:
        """The changes after which the store holds exactly `files` (path -> text)."""
        return replace_all(files, self._parsed)

    def update(self, files: Mapping[str, str]) -> StoreResult:
        """Load `files` (path -> full text, every config file there is) and move on."""
        return self.apply(self.replacing(files))

    def apply(self, changes: Iterable[Change]) -> StoreResult:
        """Move on by `changes`; sources not named keep what they had."""
        changes = list(changes)
        if not changes and self._settled is not None:
            return StoreResult(self._settled.resources, self._settled.errors)
        for change in changes:
            if change.deleted:
                self._parsed.pop(change.source, None)
                self._documents.pop(change.source, None)
            elif change.error is not None:
                # like a syntax error: the file keeps its last good resources (its document
                # cache too, so the fix re-parses only what differs from before)
                self._parsed[change.source] = FileResult(change.source, change.error, ())
            else:
                self._parsed[change.source] = self._parse(change)
        candidates: list[Resource] = []
        errors: list[ConfigError] = []
        file_candidates: dict[str, list[Resource]] = {}
        provided = {
            d.resource.key
            for result in self._parsed.values()
            for d in result.documents
            if d.resource is not None
        }
        for source in sorted(self._parsed):
            found, found_errors = self._candidates(self._parsed[source], provided)
            file_candidates[source] = found
            candidates += found
            errors += found_errors
        candidates, conflict_errors = settle_conflicts(candidates, self._accepted)
        errors += conflict_errors
        accepted, reference_errors = self._resolve(candidates)
        errors += reference_errors

        self._file_candidates = file_candidates
        before = self._accepted
        self._accepted = {r.key: r for r in accepted}
        self._last = tuple(sorted(accepted, key=lambda r: r.key))
        delta = _delta(before, self._accepted)
        self._settled = StoreResult(self._last, tuple(sorted(set(errors))), delta)
        return self._settled
