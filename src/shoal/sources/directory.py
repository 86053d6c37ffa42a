"""The config directory source: reads every YAML file under a folder and watches it.

It knows nothing of xDS. It says what changed: `read_changes` turns the paths the watcher
named into `Change`s (api/changes.py) for exactly those files (a full scan, when only one can
tell, into changes for the files whose text differs from what was read before). Editors save
through temporary files and renames, so only finished `*.yaml`/`*.yml` files are read, hidden
and backup files are skipped, and a file that vanishes between listing and reading is treated
as deleted. A file that is there but cannot be read (not UTF-8, over the size limit, no
permission) is not deleted: it is an error of that file (`filetext.py`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import watchfiles

from shoal.api import Change, ConfigError
from shoal.sources.filetext import DEFAULT_MAX_FILE_BYTES, read_file_text
from shoal.sources.namespaces import NAMESPACE_FILE, default_namespaces
from shoal.sources.secrets import is_secret_file

_SUFFIXES = (".yaml", ".yml")


def _wanted(path: Path) -> bool:
    return path.suffix in _SUFFIXES and not any(p.startswith(".") for p in path.parts)


def _walk(root: Path) -> list[str]:
    """Relative paths of the config files under `root`, hidden folders and files skipped.
    Symlinked files count; symlinked folders are not entered (as `Path.rglob`)."""
    found: list[str] = []
    base = str(root)
    for folder, dirs, names in os.walk(base):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = os.path.relpath(folder, base)
        for name in names:
            if name.endswith(_SUFFIXES) and not name.startswith("."):
                found.append(name if rel == "." else os.path.join(rel, name))
    found.sort()
    return found


def read_config_dir(root: Path, cache: DirCache | None = None) -> dict[str, str]:
    """Every config file under `root`, by path relative to `root` (stable across machines).

    With a `cache`, a file whose size and modification time are unchanged since the last call
    is not read again: after one edit in a folder of thousands, one file is read.
    """
    cache = cache if cache is not None else DirCache()
    seen: dict[str, Entry] = {}
    for key in _walk(root):
        entry = _read(root, key, cache.entries.get(key), cache.max_bytes)
        if entry is not None:
            seen[key] = entry
    cache.entries = seen
    return cache.files()


def refresh_config_files(root: Path, cache: DirCache, changed: Iterable[str]) -> dict[str, str]:
    """Like `read_config_dir` after it filled `cache`, when the watcher said which files
    changed (paths relative to `root`, as `watch_dir` reports them): only those are looked
    at, so an edit costs the same in a folder of ten files or ten thousand."""
    entries = dict(cache.entries)
    for key in changed:
        entry = _read(root, key, entries.get(key), cache.max_bytes) if _wanted(Path(key)) else None
        if entry is None:
            entries.pop(key, None)
        else:
            entries[key] = entry
    cache.entries = entries
    return cache.files()


def read_changes(
    root: Path, cache: DirCache, changed: Iterable[str] | None, namespace: str = "default"
) -> list[Change]:
    """What changed under `root` since `cache` was filled: for the files the watcher named
    (`changed`, relative paths), or, when it is None or nothing was read yet, for every file
    a full scan finds different (new, edited, gone). Only files whose text differs count.
    `namespace`: where documents naming none belong, unless a folder says (namespaces.py)."""
    before = cache.entries
    if changed is None or not before:
        read_config_dir(root, cache)
        keys: Iterable[str] = before.keys() | cache.entries.keys()
    else:
        refresh_config_files(root, cache, changed)
        keys = changed
    after = cache.entries
    changes: list[Change] = []
    keys = sorted(set(keys))
    defaults = default_namespaces(root, [k for k in keys if k in after], namespace)
    for key in keys:
        old, new = before.get(key), after.get(key)
        if new is None and old is not None:
            changes.append(Change.file(key, None))
            cache.namespaces.pop(key, None)
        elif new is not None and (
            old is None or old[3] != new[3] or cache.namespaces.get(key) != defaults[key]
        ):
            content, default = new[3], defaults[key]
            cache.namespaces[key] = default
            if isinstance(default, ConfigError):
                content = dataclasses.replace(
                    default, message=f"{default.message}, so {key} cannot be placed"
                )
            if isinstance(content, ConfigError):
                changes.append(Change.unreadable(key, content))
            else:
                assert isinstance(default, str)
                changes.append(Change.file(key, content, default))
    return changes


# (mtime_ns, size, inode, the text or why it cannot be read)
Entry = tuple[int, int, int, str | ConfigError]


def _read(root: Path, key: str, known: Entry | None, max_bytes: int) -> Entry | None:
    """The entry of one file; `known` when mtime, size and inode are the same; None when it
    is gone or not a regular file (a folder, a socket)."""
    path = root / key
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            return None
        if known is not None and known[:3] == (st.st_mtime_ns, st.st_size, st.st_ino):
            return known
        content = read_file_text(path, key, st.st_size, max_bytes)
    except FileNotFoundError:
        return None
    except OSError as err:  # stat failed: the file cannot be looked at, let alone read
        content = ConfigError(key, 1, "", f"cannot read: {err.strerror or err}")
        return (0, 0, 0, content)
    return (st.st_mtime_ns, st.st_size, st.st_ino, content)


@dataclass
class DirCache:
    """What `read_config_dir` last read: path -> `Entry`. An editor's save (rename over the
    file) changes the inode, a write in place the mtime or size. Files over `max_bytes` are
    refused from their size, unread."""

    entries: dict[str, Entry] = field(default_factory=dict)
    max_bytes: int = DEFAULT_MAX_FILE_BYTES
    # the default namespace each file was last handed over with (or why it had none)
    namespaces: dict[str, str | ConfigError] = field(default_factory=dict)

    def files(self) -> dict[str, str]:
        """The text of every file that could be read."""
        return {k: e[3] for k, e in sorted(self.entries.items()) if isinstance(e[3], str)}

    def problems(self) -> dict[str, ConfigError]:
        """Why each file that could not be read was not."""
        return {k: e[3] for k, e in sorted(self.entries.items()) if isinstance(e[3], ConfigError)}

    def holds_folder(self, key: str) -> bool:
        prefix = key.rstrip("/") + "/"
        return any(k.startswith(prefix) for k in self.entries)


# Changes the watcher reports: relative paths of config files, or None when only a full
# scan can tell (a folder appeared, vanished or was renamed: no event per file inside it).
Changes = frozenset[str] | None


def classify(base: str, paths: Iterable[str], cache: DirCache) -> tuple[bool, frozenset[str]]:
    """What a batch of watcher events means: (whether only a full scan can tell, the config
    files named, relative to `base`). Events outside `base` and for other files are dropped."""
    keys: set[str] = set()
    full = False
    for path in paths:
        rel = os.path.relpath(path, base)
        if rel.startswith(".."):
            continue
        if os.path.isdir(path) or cache.holds_folder(rel):
            full = True
        elif Path(rel).name == NAMESPACE_FILE:
            full = True  # the default namespace of every file below it may have changed
        elif _wanted(Path(rel)) or is_secret_file(Path(rel)):
            keys.add(rel)
    return full, frozenset(keys)


async def watch_dir(
    base: str, on_change: Callable[[Changes], None], stop: asyncio.Event, cache: DirCache
) -> None:
    """Call `on_change` after any change to a config file under `base` (an absolute, resolved
    path), until `stop` is set. `cache` (the reader's) tells a vanished folder from a file.

    The first read of the folder happens before the watch exists (the control plane builds
    its first snapshot, then starts serving and watching), so a file written in between has
    no event. The first batch (an empty one after `rust_timeout` when nothing happened)
    proves the watch is in place: it is answered with one full scan, which the cache makes
    a `stat` per file, so nothing written before the watch began is missed."""
    watched = False
    async for changes in watchfiles.awatch(
        base,
        debounce=50,
        step=10,
        stop_event=stop,
        recursive=True,
        rust_timeout=500,
        yield_on_timeout=True,
    ):
        full, keys = classify(base, (path for _, path in changes), cache)
        if not watched:
            watched = True
            full = True
        if full:
            on_change(None)
        elif keys:
            on_change(keys)
