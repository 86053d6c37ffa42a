"""The change set: what a source says changed, one unit of config at a time.

Sources know what changed (the watcher names the files it saw change; Kubernetes sends one
object per event), so they say so instead of handing over everything they hold. A `Change`
is source-neutral: it names its unit by `source` and carries either

* `text`: a whole file's YAML (the store splits it into documents, keyed by path and
  document index, and re-parses only the documents whose text changed), or
* `data`: one already-decoded object (a Kubernetes object: kind, metadata, spec), or
* `error`: the unit is there but cannot be read (not UTF-8, too large, no permission): it is
  an error of that unit, which keeps its last good resources as after a YAML syntax error, or
* none of these: the unit is gone (a deleted file, a deleted object).

`ConfigStore.apply` takes a batch of changes; units it is not told about keep what they had.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shoal.api.errors import ConfigError


@dataclass(frozen=True)
class Change:
    """An upsert (`text` or `data`) or a delete (neither) of the unit named `source`.

    `source` is what error messages print where a file name goes: a path relative to the
    config directory for files, and for objects something a user can find them by, such as
    ``kubernetes:VirtualService/shop/reviews``.
    """

    source: str
    text: str | None = None
    data: Mapping[str, object] | None = None
    error: ConfigError | None = None
    # where a document of `text` that names no namespace belongs (`--namespace`, a folder's
    # `namespace` file), as `kubectl apply -n NS -f FILE` would put it
    namespace: str = "default"

    def __post_init__(self) -> None:
        given = (self.text is not None) + (self.data is not None) + (self.error is not None)
        if given > 1:
            raise ValueError(f"{self.source}: a change carries one of text, data or error")

    @property
    def deleted(self) -> bool:
        return self.text is None and self.data is None and self.error is None

    @staticmethod
    def file(path: str, text: str | None, namespace: str = "default") -> Change:
        """A file's new text, or None when it is gone."""
        return Change(path, text=text, namespace=namespace)

    @staticmethod
    def unreadable(path: str, error: ConfigError) -> Change:
        """A file that is there but cannot be read; `error` says where and why."""
        return Change(path, error=error)

    @staticmethod
    def object(source: str, data: Mapping[str, object] | None) -> Change:
        """A decoded object's new content, or None when it is gone."""
        return Change(source, data=data)


def replace_all(
    files: Mapping[str, str], known: Mapping[str, object] | frozenset[str] | set[str]
) -> list[Change]:
    """The changes that turn units `known` into exactly `files` (path -> text): every file
    as an upsert, every known unit not in `files` as a delete. For callers that hold every
    file's text anyway (tests, `ConfigStore.update`)."""
    changes = [Change.file(path, files[path]) for path in sorted(files)]
    changes += [Change.file(path, None) for path in sorted(set(known) - files.keys())]
    return changes
