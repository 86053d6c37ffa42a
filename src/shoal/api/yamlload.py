"""Multi-document YAML to plain Python, remembering the line of every field.

PyYAML's constructors drop positions, so documents are composed into nodes (by libyaml)
and converted here. Two things PyYAML lets through are errors here: duplicate mapping keys
(the later one silently wins in PyYAML, and in kubectl it is rejected) and tags other than
YAML's core scalar types.

Speed (benchmarks/parse_bench.py): documents are composed and converted one at a time, so
the nodes of a large file never live all at once (holding a 1 MB file's nodes made the
cyclic GC cost more than parsing). The path -> line map of a document (`YamlDocument.lines`)
is worked out only when something asks for a line, i.e. when there is an error to report:
building it for every field of every document cost as much as the parse itself, and a valid
document never needs it. It is the same map either way: the file's text is composed again
and walked by the same converter, recording lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from shoal.api.errors import ConfigError, render_path

# libyaml's loader is much faster; PyYAML may be built without it.
_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Path = tuple[str | int, ...]

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(f"{_TAG}{t}" for t in ("str", "int", "float", "bool", "null"))
# Timestamps stay text: fields such as creationTimestamp are strings in shoal's models.
_TIMESTAMP = f"{_TAG}timestamp"
_STR = f"{_TAG}str"
_MERGE = f"{_TAG}merge"
# Aliases can expand a small file exponentially ("billion laughs"); stop early.
MAX_NODES = 200_000


@dataclass(frozen=True)
class YamlDocument:
    """One document: its data, the line it starts on, and the line of every path in it."""

    index: int
    line: int
    data: object
    lines: Mapping[Path, int]
    errors: tuple[ConfigError, ...]
    # every string in `data` (keys too) is known to hold no NUL and no lone surrogate, so the
    # loader need not walk it looking for text Envoy cannot take (load.py)
    clean_text: bool = False


class YamlSyntaxError(Exception):
    """The text is not YAML; `error` says where."""

    def __init__(self, error: ConfigError) -> None:
        super().__init__(str(error))
        self.error = error


# the core schema's constructors by tag, called directly (construct_object's bookkeeping for
# recursive structures is not needed for a scalar); a plain string is its own value
_SCALARS: Mapping[str, Callable[[SafeConstructor, ScalarNode], object]] = MappingProxyType(
    {tag: SafeConstructor.yaml_constructors[tag] for tag in _SCALAR_TAGS if tag != _STR}
)


class _Converter:
    """Node tree -> plain data; with `record`, also the line of every path (lazily used)."""

    def __init__(self, file: str, *, record: bool = False) -> None:
        self.file = file
        self.record = record
        self.lines: dict[Path, int] = {}
        self.errors: list[ConfigError] = []
        self.visited = 0
        self.active: set[int] = set()
        self.constructor = SafeConstructor()
        self.clean_text = True  # until a string that may not be is met

    def error(self, node: Node, path: Path, message: str) -> None:
        self.errors.append(
            ConfigError(self.file, node.start_mark.line + 1, render_path(path), message)
        )

    def convert(self, node: Node, path: Path) -> object:
        self.visited += 1
        if self.visited > MAX_NODES:
            raise YamlSyntaxError(
                ConfigError(
                    self.file,
                    node.start_mark.line + 1,
                    render_path(path),
                    f"document too large: more than {MAX_NODES} values after expanding aliases",
                )
            )
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        if id(node) in self.active:  # an alias pointing at one of its own parents
            self.error(node, path, "recursive YAML alias")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                items = []
                for i, item in enumerate(node.value):
                    if self.record:
                        self.lines.setdefault((*path, i), item.start_mark.line + 1)
                    items.append(self.convert(item, (*path, i)))
                return items
            if isinstance(node, MappingNode):
                return self.mapping(node, path)
        finally:
            self.active.discard(id(node))
        self.error(node, path, f"unsupported YAML node {node.tag}")
        return None

    def scalar(self, node: ScalarNode, path: Path) -> object:
        tag = node.tag
        if tag in (_STR, _TIMESTAMP):
            value: str = node.value
            # (libyaml refuses raw control characters; escapes in quoted text can make them)
            if "\x00" in value or not value.isascii():
                self.clean_text = False
            return value
        make = _SCALARS.get(tag)
        if make is None:
            self.error(node, path, f"unsupported YAML tag {tag!r}")
            return None
        return make(self.constructor, node)

    def mapping(self, node: MappingNode, path: Path) -> dict[object, object]:
        result: dict[object, object] = {}
        merged: list[dict[object, object]] = []
        record = self.record
        for key_node, value_node in node.value:
            key_tag = key_node.tag
            if key_tag == _STR and type(key_node) is ScalarNode:
                key: object = key_node.value  # the common case, inlined (see `scalar`)
                if "\x00" in key_node.value or not key_node.value.isascii():
                    self.clean_text = False
            elif key_tag == _MERGE:
                merged.extend(self.merge_sources(value_node, path))
                continue
            elif not isinstance(key_node, ScalarNode):
                self.error(key_node, path, "a mapping key must be a plain value")
                continue
            else:
                key = self.scalar(key_node, path)
                if not isinstance(key, str | int | float | bool) and key is not None:
                    continue
            if key in result:
                self._duplicate(node, key_node, key, path)
                continue
            if not record and value_node.tag == _STR and type(value_node) is ScalarNode:
                # a plain string value: nothing can go wrong below it, so no path is needed
                self.visited += 1
                text: str = value_node.value
                if "\x00" in text or not text.isascii():
                    self.clean_text = False
                result[key] = text
                continue
            child: Path = (*path, key if isinstance(key, str) else str(key))
            if record:
                self.lines.setdefault(child, key_node.start_mark.line + 1)
            result[key] = self.convert(value_node, child)
        # Merge keys ("<<: *base") fill in only what the mapping does not set itself.
        for source in merged:
            for key, value in source.items():
                result.setdefault(key, value)
        return result

    def _duplicate(self, node: MappingNode, key_node: Node, key: object, path: Path) -> None:
        first = next(
            k.start_mark.line + 1
            for k, _ in node.value
            if isinstance(k, ScalarNode) and k is not key_node and self.scalar(k, path) == key
        )
        self.error(
            key_node,
            (*path, str(key)),
            f"duplicate key {key!r} (first given on line {first})",
        )

    def merge_sources(self, node: Node, path: Path) -> list[dict[object, object]]:
        nodes = node.value if isinstance(node, SequenceNode) else [node]
        sources: list[dict[object, object]] = []
        for source in nodes:
            value = self.convert(source, path)
            if isinstance(value, dict):
                sources.append(value)
            else:
                self.error(source, path, "'<<' must merge a mapping or a list of mappings")
        return sources


class _FileLines:
    """The path -> line maps of every document of one file, made on first use."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.text: str | None = text
        self.maps: list[dict[Path, int]] = []

    def of(self, index: int) -> dict[Path, int]:
        if self.text is not None:
            for node in yaml.compose_all(self.text, Loader=_Loader):
                converter = _Converter(self.file, record=True)
                converter.lines[()] = node.start_mark.line + 1
                converter.convert(node, ())
                self.maps.append(converter.lines)
            self.text = None  # (the text parsed once already: no YAML error here)
        return self.maps[index]


class _DocumentLines(Mapping[Path, int]):
    """`YamlDocument.lines`: one document's map, computed when first read."""

    def __init__(self, file_lines: _FileLines, index: int) -> None:
        self._file = file_lines
        self._index = index

    def _map(self) -> dict[Path, int]:
        return self._file.of(self._index)

    def __getitem__(self, path: Path) -> int:
        return self._map()[path]

    def __iter__(self) -> Iterator[Path]:
        return iter(self._map())

    def __len__(self) -> int:
        return len(self._map())


def load_documents(file: str, text: str) -> list[YamlDocument]:
    """Parse every document in `text`; raise YamlSyntaxError if it is not valid YAML.

    Empty documents are returned with `data` None so document indexes stay meaningful.
    """
    lines = _FileLines(file, text)
    documents = []
    try:
        # one document at a time: its nodes go as soon as it is converted
        for index, node in enumerate(yaml.compose_all(text, Loader=_Loader)):
            converter = _Converter(file)
            data = converter.convert(node, ())
            documents.append(
                YamlDocument(
                    index,
                    node.start_mark.line + 1,
                    data,
                    _DocumentLines(lines, index),
                    tuple(converter.errors),
                    clean_text=converter.clean_text,
                )
            )
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = exc.problem or exc.context or "syntax error"
        if exc.context and exc.problem:
            what = f"{exc.problem} ({exc.context})"
        raise YamlSyntaxError(ConfigError(file, line, "", f"invalid YAML: {what}")) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(ConfigError(file, 1, "", f"invalid YAML: {exc}")) from None
    return documents
