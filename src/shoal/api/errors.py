"""Config errors a user can act on: which file, which line, which field, and why.

Every problem found while loading or cross-checking configuration becomes one
`ConfigError`. They sort by file and line so a status page or CLI lists them in the
order the user reads their files.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# A path element that can be printed after a dot without ambiguity.
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass(frozen=True, order=True)
class ConfigError:
    """One problem in one place of the configuration."""

    file: str
    line: int
    field: str
    message: str
    kind: str = ""
    name: str = ""

    def __str__(self) -> str:
        parts = [f"{self.file}:{self.line}"]
        if self.kind or self.name:
            parts.append(" ".join(p for p in (self.kind, self.name) if p))
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return ": ".join(parts)

    def to_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "field": self.field,
            "message": self.message,
            "kind": self.kind,
            "name": self.name,
        }


class InvalidConfigError(ValueError):
    """Raised by convenience loaders when configuration has errors; holds all of them."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = tuple(errors)


def render_path(path: Sequence[str | int]) -> str:
    """Render a field path as users write it: ``spec.http[0].route[1].weight``.

    Map keys that are not plain names (label keys such as ``app.kubernetes.io/name``)
    are quoted so the dots inside them are not mistaken for nesting.
    """
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _PLAIN_KEY.match(part):
            out.append(f".{part}" if out else part)
        else:
            out.append(f'["{part}"]')
    return "".join(out)
