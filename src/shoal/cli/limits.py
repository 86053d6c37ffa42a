"""The `--max-file-bytes` flag shared by `control-plane`, `up` and `analyze`."""

from __future__ import annotations

import argparse

from shoal.sources.filetext import DEFAULT_MAX_FILE_BYTES, MAX_FILE_BYTES_FLAG


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of bytes, not {text}")
    return value


def add_max_file_bytes(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        MAX_FILE_BYTES_FLAG,
        type=_positive,
        default=DEFAULT_MAX_FILE_BYTES,
        metavar="N",
        help="config files larger than N bytes are refused unread, an error of that file "
        f"(default {DEFAULT_MAX_FILE_BYTES}, 4 MiB)",
    )
