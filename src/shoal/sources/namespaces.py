"""The default namespace of each config file: where its documents that name none belong.

Files written for `kubectl apply -n NS -f FILE` carry no namespace. shoal gives them one the
same way: a plain-text file named `namespace` in a folder (one namespace name) sets the default
for every YAML file in that folder and below it, the nearest such file winning; without one,
the `--namespace` given to `shoal analyze/up/control-plane` applies, else `default`. An edit
of a `namespace` file makes the watcher rescan the folder: files whose default changed are
parsed again in their new namespace.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from shoal.api import ConfigError

NAMESPACE_FILE = "namespace"
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _read(root: Path, folder: PurePosixPath) -> str | ConfigError | None:
    path = root / folder / NAMESPACE_FILE
    rel = str(folder / NAMESPACE_FILE)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        return ConfigError(rel, 1, "", f"cannot read the folder's namespace file: {err}")
    if len(text) > 63 or not _LABEL.fullmatch(text):
        return ConfigError(
            rel,
            1,
            "",
            f"{text[:70]!r} is not a namespace name (a DNS-1123 label: lower-case letters, "
            "digits and '-', at most 63 characters)",
        )
    return text


def default_namespaces(
    root: Path, keys: Iterable[str], default: str = "default"
) -> dict[str, str | ConfigError]:
    """The default namespace of each file `keys` names (paths relative to `root`), or the
    error of the `namespace` file that should have said it."""
    known: dict[PurePosixPath, str | ConfigError | None] = {}

    def of(folder: PurePosixPath) -> str | ConfigError:
        if folder not in known:
            known[folder] = _read(root, folder)
        found = known[folder]
        if found is not None:
            return found
        return default if folder == folder.parent else of(folder.parent)

    return {key: of(PurePosixPath(key).parent) for key in keys}
