"""The `--max-file-bytes` and `--namespace` flags shared by `control-plane`, `up` and
`analyze`."""

from __future__ import annotations

import argparse
import re

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


def _namespace(text: str) -> str:
    if len(text) > 63 or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a namespace name (a DNS-1123 label)")
    return text


def add_namespace(p: argparse.ArgumentParser) -> None:
    """`--namespace NS` (`-n`): where config documents naming no namespace belong."""
    p.add_argument(
        "-n",
        "--namespace",
        type=_namespace,
        default="default",
        metavar="NS",
        help="namespace of documents that name none, as `kubectl apply -n NS` (a folder's "
        "`namespace` file wins for the files below it; default: default)",
    )
