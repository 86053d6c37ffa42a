"""The config directory source: reads every YAML file under a folder and watches it.

It knows nothing of xDS; it hands `{path: text}` to whoever listens. Editors save through
temporary files and renames, so only finished `*.yaml`/`*.yml` files are read, hidden and
backup files are skipped, and a file that vanishes between listing and reading is treated as
deleted.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import watchfiles

from shoal.sources.secrets import is_secret_file

log = logging.getLogger("shoal.sources")

_SUFFIXES = (".yaml", ".yml")


def _wanted(path: Path) -> bool:
    return path.suffix in _SUFFIXES and not any(p.startswith(".") for p in path.parts)


def read_config_dir(root: Path, cache: DirCache | None = None) -> dict[str, str]:
    """Every config file under `root`, by path relative to `root` (stable across machines).

    With a `cache`, a file whose size and modification time are unchanged since the last call
    is not read again: after one edit in a folder of thousands, one file is read.
    """
    files: dict[str, str] = {}
    seen: dict[str, tuple[int, int, int, str]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not _wanted(rel):
            continue
        try:
            st = path.stat()
            if not stat.S_ISREG(st.st_mode):
                continue
            key = str(rel)
            known = cache.entries.get(key) if cache is not None else None
            if known is not None and known[:3] == (st.st_mtime_ns, st.st_size, st.st_ino):
                text = known[3]
            else:
                text = path.read_text(encoding="utf-8")
            files[key] = text
            seen[key] = (st.st_mtime_ns, st.st_size, st.st_ino, text)
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as err:
            log.error("%s: cannot read: %s", rel, err)
    if cache is not None:
        cache.entries = seen
    return files


@dataclass
class DirCache:
    """What `read_config_dir` last read: path -> (mtime_ns, size, inode, text). An editor's
    save (rename over the file) changes the inode, a write in place the mtime or size."""

    entries: dict[str, tuple[int, int, int, str]] = field(default_factory=dict)


async def watch_dir(base: str, on_change: Callable[[], None], stop: asyncio.Event) -> None:
    """Call `on_change` after any change to a config file under `base` (an absolute, resolved
    path), until `stop` is set."""
    async for changes in watchfiles.awatch(
        base, debounce=50, step=10, stop_event=stop, recursive=True, rust_timeout=500
    ):
        if any(_relevant(base, p) for _, p in changes):
            on_change()


def _relevant(base: str, path: str) -> bool:
    rel = os.path.relpath(os.path.realpath(path), base)
    return not rel.startswith("..") and (_wanted(Path(rel)) or is_secret_file(Path(rel)))
