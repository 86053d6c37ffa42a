"""Output helpers for the `shoal` command: tables and JSON on stdout.

Tables are drawn with rich. On a terminal they get a light frame and bold headers; when
stdout is a pipe or a file they are plain columns (no colour codes, no box-drawing
characters, no wrapping at 80 columns) so `grep`, `awk` and tests read them line by line.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import TextIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

# Wide enough that no real row wraps when the output is not a terminal: a wrapped row
# would split one record over several lines and break line-oriented tools.
_PIPE_WIDTH = 100_000


def console(file: TextIO | None = None) -> Console:
    """A Console for `file` (default: the current sys.stdout, looked up at call time so
    pytest's capture and redirections are honoured)."""
    out = file if file is not None else sys.stdout
    tty = out.isatty()
    return Console(
        file=out,
        no_color=not tty,
        highlight=False,
        emoji=False,
        width=None if tty else _PIPE_WIDTH,
    )


def render_table(
    columns: Sequence[str], rows: Iterable[Sequence[str]], file: TextIO | None = None
) -> None:
    """Print a table with `columns` as headers and one line per row."""
    con = console(file)
    table = Table(
        box=box.SIMPLE_HEAD if con.is_terminal else None,
        show_edge=False,
        pad_edge=False,
        header_style="bold" if con.is_terminal else "",
    )
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        # Text, not str: cell contents (regexes such as `[0-9]+`, cluster names) must never
        # be read as rich markup.
        table.add_row(*(Text(cell) for cell in row))
    if con.is_terminal:
        con.print(table)
        return
    # Without a frame, rich pads every cell to its column width; strip the padding at the
    # end of each line so the output diffs and greps cleanly.
    with con.capture() as captured:
        con.print(table)
    for line in captured.get().splitlines():
        print(line.rstrip(), file=con.file)


def print_json(data: object, file: TextIO | None = None) -> None:
    """Print `data` as indented JSON (for `-o json`): stable, parseable, no colour."""
    out = file if file is not None else sys.stdout
    print(json.dumps(data, indent=2, sort_keys=False), file=out)
