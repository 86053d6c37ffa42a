"""A file as a list of documents, so an edit re-parses only the documents whose text changed.

A `---` at the start of a line always starts a new YAML document (YAML forbids it inside any
scalar at column 0), so a file can be cut there without parsing it. Each piece is parsed on
its own, relative to its first line, and remembered by its text; a piece that only moved
(lines were added above it) is not parsed again, its lines are shifted instead, so errors
still name the exact line. When a piece does not parse on its own (a `%YAML` directive, a
syntax error) the whole file is parsed as one, which gives exactly the error a whole-file
parse gives.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from shoal.api.errors import ConfigError
from shoal.api.load import (
    DEFAULT_NAMESPACE,
    DocumentResult,
    FileResult,
    Loaded,
    document_result,
    parse_documents,
)
from shoal.api.yamlload import YamlSyntaxError, load_documents

_START = re.compile(r"^---(?=[ \t\r\n]|$)", re.MULTILINE)


def split_documents(text: str) -> list[tuple[int, str]]:
    """(line the piece starts on, 1-based; its text) for every piece of `text`."""
    starts = [m.start() for m in _START.finditer(text)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    pieces: list[tuple[int, str]] = []
    line = 1
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        piece = text[start:end]
        pieces.append((line, piece))
        line += piece.count("\n")
    return pieces


def _shifted(result: DocumentResult, lines: int, index: int) -> DocumentResult:
    """`result` (parsed relative to its piece) moved down by `lines` and renumbered."""
    resource = result.resource
    if resource is not None:
        # meta and spec stay the same objects: whatever keys on them still finds them
        resource = dataclasses.replace(resource, origin=resource.origin.shifted(lines))
    errors = tuple(dataclasses.replace(e, line=e.line + lines) for e in result.errors)
    return DocumentResult(index, result.line + lines, result.key, resource, errors)


@dataclass
class _Piece:
    relative: tuple[DocumentResult, ...]
    # documents in the piece, empty ones included (they count for the document index)
    count: int

    @property
    def errors(self) -> bool:
        return any(r.errors for r in self.relative)

    # the last placement handed out: (first line, first index) -> those results, so a piece
    # that stayed where it was gives back the very same objects
    placed: tuple[int, int, tuple[DocumentResult, ...]] | None = None

    def at(self, line: int, index: int) -> tuple[DocumentResult, ...]:
        if self.placed is not None and self.placed[:2] == (line, index):
            return self.placed[2]
        results = tuple(_shifted(r, line - 1, index + r.index) for r in self.relative)
        self.placed = (line, index, results)
        return results


@dataclass
class DocumentCache:
    """The pieces of one file last parsed, by text (see the module doc)."""

    pieces: dict[str, _Piece] = field(default_factory=dict)
    # where documents naming no namespace belong (a change of it means a new cache)
    namespace: str = DEFAULT_NAMESPACE
    # how many pieces were parsed by the last `parse` (for tests and benchmarks)
    parsed: int = 0
    last: tuple[str, FileResult] | None = None

    def parse(self, path: str, text: str, loaded: Mapping[str, Loaded] | None = None) -> FileResult:
        """What `parse_documents(path, text)` returns, parsing only new pieces. `loaded`
        holds pieces (or the whole text) loaded elsewhere (`new_pieces`, `load_texts`): a
        control plane loads big ones in a worker process, off its event loop's GIL."""
        if self.last is not None and self.last[0] == text:
            self.parsed = 0
            return self.last[1]
        result = self._parse(path, text, loaded or {})
        self.last = (text, result)
        return result

    def parsed_text(self, text: str) -> bool:
        """Whether `text` is what was parsed last (a `parse` of it costs nothing)."""
        return self.last is not None and self.last[0] == text

    def new_pieces(self, text: str) -> list[str]:
        """The pieces of `text` a `parse` would have to load: the ones not known yet."""
        return [p for _, p in split_documents(text) if p not in self.pieces]

    def _parse(self, path: str, text: str, loaded: Mapping[str, Loaded]) -> FileResult:
        pieces: dict[str, _Piece] = {}
        documents: list[DocumentResult] = []
        self.parsed = 0
        index = 0
        for line, piece_text in split_documents(text):
            piece = pieces.get(piece_text) or self.pieces.get(piece_text)
            if piece is None:
                self.parsed += 1
                try:
                    docs = loaded.get(piece_text)
                    if isinstance(docs, ConfigError):
                        raise YamlSyntaxError(docs)
                    if docs is None:
                        docs = load_documents(path, piece_text)
                except YamlSyntaxError:
                    # keep what parsed, so the fix re-parses only the broken piece
                    self.pieces.update(pieces)
                    return parse_documents(path, text, loaded.get(text), self.namespace)
                relative = tuple(
                    document_result(path, d, self.namespace) for d in docs if d.data is not None
                )
                piece = _Piece(relative, len(docs))
            elif piece_text in pieces:
                # the same text twice in one file: each copy has its own placement
                piece = _Piece(piece.relative, piece.count)
            if piece.errors:
                # an error's message may name another line of its piece ("first given on
                # line 8"), which no shift can fix: such a piece is parsed where it stands
                # (blank lines above it) and not kept
                placed = load_documents(path, "\n" * (line - 1) + piece_text)
                documents += [
                    dataclasses.replace(r, index=index + r.index)
                    for r in (
                        document_result(path, d, self.namespace)
                        for d in placed
                        if d.data is not None
                    )
                ]
            else:
                pieces.setdefault(piece_text, piece)
                documents += piece.at(line, index)
            index += piece.count
        self.pieces = pieces
        return FileResult(path, None, tuple(documents))
