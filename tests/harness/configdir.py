"""The control plane's watched config directory, written the way shoal itself writes config.

Writes are atomic (temp file in the same directory, then ``rename``), so the watcher never sees
a half-written file; a test that wants a broken file writes broken YAML on purpose.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class ConfigDir:
    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path

    def write(self, name: str, text: str) -> Path:
        """Atomically replace ``name`` with ``text``."""
        return self.write_bytes(name, text.encode())

    def write_bytes(self, name: str, data: bytes) -> Path:
        """Atomically replace ``name`` with ``data`` (for files that are not UTF-8 text)."""
        target = self.path / name
        # A dot-prefixed temp name, so a watcher filtering on *.yaml ignores it until the rename.
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=self.path)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return target

    def remove(self, name: str) -> None:
        (self.path / name).unlink()

    def read(self, name: str) -> str:
        return (self.path / name).read_text()


def line_of(text: str, needle: str) -> int:
    """1-based line number of the first line of ``text`` containing ``needle``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise ValueError(f"{needle!r} not in text")
