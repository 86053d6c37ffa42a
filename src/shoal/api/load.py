"""Loading a config file: YAML text in, validated Resources and located errors out.

Each document is checked on its own, so one bad document never hides the good ones
next to it. The result keeps, per document, the (kind, namespace, name) key whenever
it can still be read, so the store can keep a refused resource's last good version.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from pydantic import ValidationError

from shoal.api.errors import ConfigError, InvalidConfigError, render_path
from shoal.api.kinds import FILE_KIND_SPECS, KindSpec, UnknownKindError, lookup, resource_kind
from shoal.api.meta import ObjectMeta
from shoal.api.resource import Origin, Path, Resource, ResourceKey, Spec
from shoal.api.validation_errors import translate, unknown_field_message
from shoal.api.yamlload import YamlDocument, YamlSyntaxError, load_documents

_ENVELOPE = ("apiVersion", "kind", "metadata", "spec", "status")
_OBJECT_ENVELOPE = ("apiVersion", "kind", "metadata", "status")
# where a document that names no namespace belongs, unless its file says otherwise
DEFAULT_NAMESPACE = "default"


@dataclass(frozen=True)
class DocumentResult:
    """The outcome of one non-empty document: a resource, or the errors that refused it."""

    index: int
    line: int
    key: ResourceKey | None
    resource: Resource | None
    errors: tuple[ConfigError, ...]


@dataclass(frozen=True)
class FileResult:
    """The outcome of one file; `syntax_error` is set when it is not YAML at all."""

    file: str
    syntax_error: ConfigError | None
    documents: tuple[DocumentResult, ...]

    @property
    def resources(self) -> list[Resource]:
        return [d.resource for d in self.documents if d.resource is not None]

    @property
    def errors(self) -> list[ConfigError]:
        if self.syntax_error is not None:
            return [self.syntax_error]
        return sorted(e for d in self.documents for e in d.errors)


def _readable_key(data: dict[object, object], namespace: str) -> ResourceKey | None:
    """The resource key, if kind and name can be read even from an invalid document."""
    kind, meta = data.get("kind"), data.get("metadata")
    if isinstance(kind, str) and isinstance(data.get("apiVersion"), str):
        kind = resource_kind(str(data["apiVersion"]), kind)
    if not isinstance(kind, str) or kind not in FILE_KIND_SPECS or not isinstance(meta, dict):
        return None
    name, namespace = meta.get("name"), meta.get("namespace", namespace)
    if not isinstance(name, str) or not isinstance(namespace, str):
        return None
    return (kind, namespace, name)


def _bad_text(value: str) -> str | None:
    """Why a string cannot go into Envoy config (protobuf strings are UTF-8), or None."""
    if "\x00" in value:
        return "contains a NUL character (\\0), which no config value may hold"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"contains {value[exc.start]!r} at {exc.start}, which is not a Unicode character"
    return None


def _text_problems(data: object, path: tuple[str | int, ...]) -> list[tuple[Path, str]]:
    """Every string (key or value) below `data` that no Envoy field can hold, with its path."""
    found: list[tuple[Path, str]] = []
    if isinstance(data, str):
        problem = _bad_text(data)
        if problem is not None:
            found.append((path, f"{data[:60]!r} {problem}"))
    elif isinstance(data, dict):
        for key, value in data.items():
            here = (*path, str(key))
            if isinstance(key, str) and (problem := _bad_text(key)) is not None:
                found.append((here, f"the key {key[:60]!r} {problem}"))
            found += _text_problems(value, here)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += _text_problems(value, (*path, i))
    return found


def _document(file: str, doc: YamlDocument, namespace: str = DEFAULT_NAMESPACE) -> DocumentResult:
    origin = Origin(file, doc.line, doc.lines)
    data = doc.data
    if not isinstance(data, dict):
        error = ConfigError(
            file, doc.line, "", "a document must be a mapping with apiVersion, kind, metadata, spec"
        )
        return DocumentResult(doc.index, doc.line, None, None, (error, *doc.errors))

    key = _readable_key(data, namespace)
    kind = data.get("kind") if isinstance(data.get("kind"), str) else ""
    if kind and isinstance(data.get("apiVersion"), str):
        kind = resource_kind(str(data["apiVersion"]), str(kind))
    label = f"{key[1]}/{key[2]}" if key else ""
    errors = [dataclasses.replace(e, kind=str(kind), name=label) for e in doc.errors]

    def fail(path: tuple[str | int, ...], message: str) -> None:
        errors.append(
            ConfigError(file, origin.line_of(path), render_path(path), message, str(kind), label)
        )

    reported: dict[str, list[str]] = {}
    # (the YAML loader saw every string: a walk only when one of them may be bad)
    for path, message in [] if doc.clean_text else _text_problems(data, ()):
        fail(path, message)
        reported.setdefault(render_path(path), []).append(message)
    api_version, kind_value = data.get("apiVersion"), data.get("kind")
    kind_spec: KindSpec | None = None
    if not isinstance(api_version, str):
        fail(("apiVersion",), "apiVersion is required and must be a string")
    if not isinstance(kind_value, str):
        fail(("kind",), "kind is required and must be a string")
    if isinstance(api_version, str) and isinstance(kind_value, str):
        try:
            kind_spec = lookup(api_version, kind_value)
        except UnknownKindError as exc:
            fail((exc.field,), str(exc))
    top_level = kind_spec is not None and kind_spec.top_level
    if not top_level:
        for name in data:
            if name not in _ENVELOPE:
                fail((str(name),), unknown_field_message(str(name), _ENVELOPE))
    spec_model = kind_spec.spec if kind_spec is not None else None

    meta: ObjectMeta | None = None
    if "metadata" not in data:
        fail(("metadata",), "metadata with at least a name is required")
    else:
        raw_meta = data["metadata"]
        if isinstance(raw_meta, dict) and "namespace" not in raw_meta:
            # a file without namespaces lands in the default one, as `kubectl apply -n NS`
            raw_meta = {**raw_meta, "namespace": namespace}
        try:
            meta = ObjectMeta.model_validate(raw_meta)
        except ValidationError as exc:
            errors += translate(exc, ObjectMeta, ("metadata",), origin, kind=str(kind), name=label)

    spec: Spec | None = None
    if spec_model is not None:
        # a Secret's `data`, a Role's `rules`: such an object is its own spec
        raw_spec = (
            {k: v for k, v in data.items() if k not in _OBJECT_ENVELOPE}
            if top_level
            else data.get("spec")
        )
        base: tuple[str, ...] = () if top_level else ("spec",)
        try:
            spec = cast(Spec, spec_model.model_validate({} if raw_spec is None else raw_spec))
        except ValidationError as exc:
            errors += translate(exc, spec_model, base, origin, kind=str(kind), name=label)

    if reported:  # the model's own complaint about the same string would say it twice
        errors = [e for e in errors if e.field not in reported or e.message in reported[e.field]]
    resource = None
    if not errors and meta is not None and spec is not None and isinstance(api_version, str):
        resource = Resource(api_version, str(kind), meta, spec, origin)
    return DocumentResult(doc.index, doc.line, key, resource, tuple(errors))


def document_result(
    file: str, doc: YamlDocument, namespace: str = DEFAULT_NAMESPACE
) -> DocumentResult:
    """Validate one non-empty document of `file` (its data and the lines of its fields);
    `namespace`: where a document that names none belongs."""
    return _document(file, doc, namespace)


def parse_object(source: str, data: object) -> DocumentResult:
    """Validate one already-decoded object (no lines to point at: errors name line 1)."""
    return _document(source, YamlDocument(0, 1, data, {(): 1}, ()))


# What loading YAML text gives: its documents, or the syntax error (see `load_texts`).
Loaded = list[YamlDocument] | ConfigError


def load_texts(path: str, texts: Sequence[str]) -> list[Loaded]:
    """`load_documents` of each text of file `path`, a syntax error as a value. Loading is
    the GIL-bound part of a parse; a control plane does it in a worker process with this
    very function, and hands the results back (api/documents.py `parse(..., loaded=)`)."""
    out: list[Loaded] = []
    for text in texts:
        try:
            out.append(load_documents(path, text))
        except YamlSyntaxError as exc:
            out.append(exc.error)
    return out


def parse_documents(
    path: str, text: str, loaded: Loaded | None = None, namespace: str = DEFAULT_NAMESPACE
) -> FileResult:
    """Parse and validate every document of one file, keeping per-document outcomes
    (`loaded`: the text already loaded, see `load_texts`; `namespace`: the default one)."""
    documents = loaded if loaded is not None else load_texts(path, [text])[0]
    if isinstance(documents, ConfigError):
        return FileResult(path, documents, ())
    results = tuple(_document(path, doc, namespace) for doc in documents if doc.data is not None)
    return FileResult(path, None, results)


def parse_file(path: str, text: str) -> tuple[list[Resource], list[ConfigError]]:
    """The valid resources of one file, and an error for everything that was refused."""
    result = parse_documents(path, text)
    return result.resources, result.errors


def parse_text(text: str, path: str = "<text>") -> list[Resource]:
    """Resources in `text`, or InvalidConfigError listing every problem (handy in tests)."""
    resources, errors = parse_file(path, text)
    if errors:
        raise InvalidConfigError(errors)
    return resources
