"""One config file's text, or the error that says why it cannot be had.

A file that is there but cannot be read is an error of that file, never a deletion: bytes that
are not UTF-8 (named by byte offset and line), a file over the size limit (refused from its
size alone, before a byte is read, so a huge file costs neither time nor memory), a file the
process may not read. The store then keeps the file's last good resources, as after a YAML
syntax error.
"""

from __future__ import annotations

import os
from pathlib import Path

from shoal.api import ConfigError

# Larger files are refused unread. A mesh's config is kilobytes per resource; 4 MB is about
# a thousand ServiceEntries with ten endpoints each in one file, and parsing it takes seconds.
DEFAULT_MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_FILE_BYTES_FLAG = "--max-file-bytes"


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB ({n} bytes)" if n >= 1024 * 1024 else f"{n} bytes"


def too_large(key: str, size: int, limit: int) -> ConfigError:
    return ConfigError(
        key,
        1,
        "",
        f"file is {_size(size)}, over the limit of {_size(limit)}; not read "
        f"(split it, or raise the limit with {MAX_FILE_BYTES_FLAG})",
    )


def not_utf8(key: str, data: bytes, err: UnicodeDecodeError) -> ConfigError:
    line = data.count(b"\n", 0, err.start) + 1
    column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
    bad = " ".join(f"0x{b:02x}" for b in data[err.start : min(err.end, err.start + 4)])
    return ConfigError(
        key,
        line,
        "",
        f"not valid UTF-8 at byte offset {err.start} (line {line}, column {column}): "
        f"{bad}: {err.reason}; config files must be UTF-8 (is it Latin-1, or not text?)",
    )


def read_file_text(path: Path, key: str, size: int, limit: int) -> str | ConfigError:
    """The UTF-8 text of `path` (`key` names it in errors; `size` from its stat), or the
    error. Raises FileNotFoundError when it vanished meanwhile (a deletion)."""
    if size > limit:
        return too_large(key, size, limit)
    try:
        with open(path, "rb") as fh:
            # never more than the limit, even if the file grew since its stat
            data = fh.read(limit + 1)
            if len(data) > limit:
                return too_large(key, os.fstat(fh.fileno()).st_size, limit)
    except FileNotFoundError:
        raise
    except OSError as err:
        return ConfigError(key, 1, "", f"cannot read: {err.strerror or err}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        return not_utf8(key, data, err)
