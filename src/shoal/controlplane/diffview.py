"""`POST /debug/diff`: what a config change would do to each connected proxy (`shoal diff`).

The body names files as they would sit in the config directory (relative paths) with their
text, and files the change would delete: `{"files": {"PATH": "TEXT"}, "delete": ["PATH"]}`.
The control plane forks its pipeline (engine/pipeline.py), applies the change to the fork
and compares, per connected proxy, the generation in force with the one the change would
make (engine/diff.py). Nothing is pushed and nothing the control plane holds changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from aiohttp import web

from shoal.api import Change, ConfigError
from shoal.engine.diff import config_diff
from shoal.sources.namespaces import default_namespaces

if TYPE_CHECKING:
    from shoal.controlplane.app import ControlPlane


class BadDiffRequest(ValueError):
    """The request body is not a change this control plane can try; str() says why."""


def _path(name: object) -> str:
    path = PurePosixPath(str(name))
    if not str(name) or path.is_absolute() or ".." in path.parts:
        raise BadDiffRequest(f"file {name!r}: give a path relative to the config directory")
    return str(path)


def changes_of(body: Any, namespace: str, root: Path | None = None) -> list[Change]:
    """The change set of a diff request. Documents naming no namespace get the one their
    folder under `root` (the config directory) gives, as the directory source does
    (sources/namespaces.py), else `namespace`."""
    if not isinstance(body, Mapping):
        raise BadDiffRequest('expected {"files": {"PATH": "TEXT"}, "delete": ["PATH"]}')
    files, delete = body.get("files") or {}, body.get("delete") or []
    if not isinstance(files, Mapping) or not isinstance(delete, list):
        raise BadDiffRequest('"files" must map paths to texts, "delete" list paths')
    texts = {_path(k): str(v) for k, v in files.items()}
    defaults = default_namespaces(root, texts, namespace) if root is not None else {}
    out = []
    for key, text in sorted(texts.items()):
        default = defaults.get(key, namespace)
        if isinstance(default, ConfigError):
            out.append(Change.unreadable(key, default))
        else:
            out.append(Change.file(key, text, default))
    out += [Change.file(_path(k), None, namespace) for k in delete]
    if not out:
        raise BadDiffRequest("the change names no file")
    return out


def preview(cp: ControlPlane, body: Any) -> dict[str, object]:
    """The diff of `body`'s change against what is in force (raises BadDiffRequest)."""
    changes = changes_of(body, cp.settings.namespace, cp.settings.config_dir)
    pipeline = cp.pipeline
    fork = pipeline.fork()
    after = fork.apply(changes).generation
    proxies = [c.proxy for c in cp.ads.connections.values() if c.proxy is not None]
    result = config_diff(pipeline.generation, after, proxies, pipeline.errors, fork.errors)
    return result.to_json()


def setup(app: web.Application, cp: ControlPlane) -> None:
    async def diff(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            return web.json_response(preview(cp, body))
        except ValueError as err:  # BadDiffRequest, or a body that is not JSON
            return web.json_response({"error": str(err)}, status=400)

    app.router.add_post("/debug/diff", diff)
