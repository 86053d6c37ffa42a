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
from collections.abc import Callable
from pathlib import Path

import watchfiles

from shoal.sources.secrets import is_secret_file

log = logging.getLogger("shoal.sources")

_SUFFIXES = (".yaml", ".yml")


def _wanted(path: Path) -> bool:
    return path.suffix in _SUFFIXES and not any(p.startswith(".") for p in path.parts)


def read_config_dir(root: Path) -> dict[str, str]:
    """Every config file under `root`, by path relative to `root` (stable across machines)."""
    files: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not _wanted(rel) or not path.is_file():
            continue
        try:
            files[str(rel)] = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as err:
            log.error("%s: cannot read: %s", rel, err)
    return files


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
