"""The config store: the last good configuration, kept across reloads of the files.

"Bad input loses nothing": when a file stops parsing, or a document in it stops
validating, or a resource stops fitting with the others, the mesh keeps running on
what it had before for that part, and the rest moves on. Errors are reported on every
update, not only on the one that introduced them, so a status endpoint can show them
until they are fixed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from shoal.api.errors import ConfigError
from shoal.api.load import FileResult, parse_documents
from shoal.api.resource import Resource, ResourceKey
from shoal.api.validate import validate_references

_KEPT = "; keeping its last good version"
_KEPT_FILE = "; keeping the resources of this file's last good version"


@dataclass(frozen=True)
class StoreResult:
    resources: tuple[Resource, ...]  # sorted by key
    errors: tuple[ConfigError, ...]  # sorted
    changed: bool


def _note(error: ConfigError, suffix: str) -> ConfigError:
    return dataclasses.replace(error, message=error.message + suffix)


class ConfigStore:
    """Holds the accepted configuration; `update` with the current files to move it on."""

    def __init__(self, known_hosts: Mapping[str, Collection[int]] | None = None) -> None:
        # The resources each file contributed last time (after keeping last-good
        # versions of its invalid documents): what a file that stops parsing keeps.
        self._file_candidates: dict[str, list[Resource]] = {}
        self._accepted: dict[ResourceKey, Resource] = {}
        self._last: tuple[Resource, ...] = ()
        self._known_hosts = known_hosts
        # path -> (text, parse result): an edit re-parses one file, not the whole folder
        self._parsed: dict[str, tuple[str, FileResult]] = {}

    @property
    def resources(self) -> tuple[Resource, ...]:
        return self._last

    def _candidates(self, result: FileResult) -> tuple[list[Resource], list[ConfigError]]:
        """The resources `result` offers, with last-good versions of refused documents."""
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
            if previous is not None:
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

    def _parse(self, path: str, text: str) -> FileResult:
        cached = self._parsed.get(path)
        if cached is not None and cached[0] == text:
            return cached[1]
        result = parse_documents(path, text)
        self._parsed[path] = (text, result)
        return result

    def update(self, files: Mapping[str, str]) -> StoreResult:
        """Load `files` (path -> full text, every config file there is) and move on."""
        candidates: list[Resource] = []
        errors: list[ConfigError] = []
        file_candidates: dict[str, list[Resource]] = {}
        for path in sorted(files):
            found, found_errors = self._candidates(self._parse(path, files[path]))
            file_candidates[path] = found
            candidates += found
            errors += found_errors
        accepted, reference_errors = self._resolve(candidates)
        errors += reference_errors

        self._file_candidates = file_candidates
        for gone in self._parsed.keys() - files.keys():
            del self._parsed[gone]
        self._accepted = {r.key: r for r in accepted}
        resources = tuple(sorted(accepted, key=lambda r: r.key))
        changed = resources != self._last
        self._last = resources
        return StoreResult(resources, tuple(sorted(set(errors))), changed)
