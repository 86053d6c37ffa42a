"""`shoal diff FILE|DIR...`: before applying a change, which proxies it would touch and the
Envoy resources it would add, change and remove in each -- computed, nothing pushed.

The change: each FILE lands in the config directory under its own name, each file under a
DIR at its path relative to DIR, replacing the file of that name if there is one;
`--delete NAME` removes a file. The same pipeline and generator that serve the proxies
compute the result (engine/diff.py), from one of two starting points:

- a running control plane (`--control-plane`, default): its config in force and its
  connected proxies (`POST /debug/diff`; the control plane forks its pipeline for it);
- offline, `--config-dir DIR`: the folder read as the control plane reads it, and the
  proxies `shoal up DIR` would run (one per LocalWorkload and LocalGateway; `--secure` as
  `shoal up --secure`). No registry instances: endpoints of local replicas are not shown.

Config errors the change brings are listed with file, line and field (their resources would
be left out, as the control plane does); the exit status is then 1, else 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shoal.cli.fetch import TIMEOUT_S, add_control_plane_flag, control_plane_url
from shoal.cli.tables import print_json
from shoal.controlplane.diffview import BadDiffRequest, changes_of
from shoal.engine import Pipeline
from shoal.engine.diff import config_diff, local_proxies
from shoal.sources.directory import DirCache, read_changes, read_config_dir
from shoal.sources.policyfiles import read_policy_files
from shoal.sources.secrets import read_credentials


class DiffError(Exception):
    """The diff could not be computed; str() says why."""


def change_files(targets: Sequence[str]) -> dict[str, str]:
    """Path in the config directory -> text, for every FILE and every config file of DIR."""
    out: dict[str, str] = {}
    for target in targets:
        path = Path(target)
        if path.is_dir():
            found = read_config_dir(path)
            if not found:
                raise DiffError(f"{target}: no YAML files in this directory")
            out.update(found)
        elif path.is_file():
            try:
                out[path.name] = path.read_text()
            except (OSError, UnicodeDecodeError) as err:
                raise DiffError(f"{target}: cannot read: {err}") from err
        else:
            raise DiffError(f"{target}: no such file or directory")
    return out


def offline(root: Path, files: Mapping[str, str], delete: Sequence[str], secure: bool) -> Any:
    """The diff against the config directory `root`, as plain JSON (same as the endpoint's)."""
    if not root.is_dir():
        raise DiffError(f"--config-dir {root}: not a directory")
    pipeline = Pipeline("diff", policy_files=lambda res: read_policy_files(root, res))
    before = pipeline.apply(
        read_changes(root, DirCache(), None), credentials=read_credentials(root)
    ).generation
    errors_before = pipeline.errors
    try:
        changes = changes_of({"files": files, "delete": list(delete)}, "default", root)
    except BadDiffRequest as err:
        raise DiffError(str(err)) from err
    fork = pipeline.fork()
    after = fork.apply(changes).generation
    old = {p.node_id: p for p in local_proxies(pipeline.store.resources, secure=secure)}
    new = {p.node_id: p for p in local_proxies(fork.store.resources, secure=secure)}
    result = config_diff(
        before,
        after,
        {**old, **new}.values(),
        errors_before,
        fork.errors,
        added=new.keys() - old.keys(),
        removed=old.keys() - new.keys(),
    )
    return result.to_json()


def online(url: str, files: Mapping[str, str], delete: Sequence[str]) -> Any:
    body = json.dumps({"files": dict(files), "delete": list(delete)}).encode()
    request = urllib.request.Request(
        f"{url}/debug/diff", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=max(TIMEOUT_S, 30)) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:
        with err:
            text = err.read().decode(errors="replace")
        try:
            why = json.loads(text).get("error", text)
        except ValueError:
            why = text
        raise DiffError(f"the control plane at {url} refused the diff: {why}") from err
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise DiffError(f"cannot reach the control plane at {url}: {err}") from err


def _error_line(e: Mapping[str, Any]) -> str:
    parts = [f"{e.get('file')}:{e.get('line')}"]
    name = " ".join(str(p) for p in (e.get("kind"), e.get("name")) if p)
    parts += [p for p in (name, str(e.get("field") or "")) if p]
    return ": ".join([*parts, str(e.get("message"))])


def _proxy_name(p: Mapping[str, Any]) -> str:
    node = str(p.get("node", ""))
    parts = node.split("~")
    return parts[2] if len(parts) == 4 else node  # pod.namespace, as istioctl shows it


def render(result: Mapping[str, Any]) -> None:
    proxies = result.get("proxies") or []
    touched = [p for p in proxies if p.get("touched")]
    for p in touched:
        print(f"{_proxy_name(p)} ({p.get('node')})")
        for t in p.get("types") or []:
            details = t.get("details") or {}
            for verb, sign in (("added", "+"), ("changed", "~"), ("removed", "-")):
                for name in t.get(verb) or []:
                    print(f"  {sign} {t['type']:<4} {name}")
                    for line in details.get(name) or []:  # a route table's virtual hosts
                        print(f"           {line[0]} virtual host {line[1:]}")
    quiet = sorted(_proxy_name(p) for p in proxies if not p.get("touched"))
    if quiet:
        print(f"unchanged: {', '.join(quiet)}")
    print(f"{len(touched)} of {len(proxies)} proxies would change")
    for e in result.get("new_errors") or []:
        print(f"error (left out): {_error_line(e)}")
    for e in result.get("fixed_errors") or []:
        print(f"fixed: {_error_line(e)}")


def run(args: argparse.Namespace) -> int:
    try:
        files = change_files(args.targets)
        if args.config_dir is not None:
            result = offline(Path(args.config_dir), files, args.delete, args.secure)
        else:
            result = online(control_plane_url(args.control_plane), files, args.delete)
    except DiffError as err:
        print(f"shoal diff: {err}", file=sys.stderr)
        return 2
    if args.output == "json":
        print_json(result)
    else:
        render(result)
    return 1 if result.get("new_errors") else 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "diff",
        help="which proxies a config change would touch, and the Envoy resources it changes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("targets", nargs="+", metavar="FILE|DIR", help="the changed config files")
    p.add_argument(
        "--delete", action="append", default=[], metavar="NAME", help="a file the change removes"
    )
    p.add_argument("--config-dir", help="offline: diff against this folder, not a control plane")
    p.add_argument("--secure", action="store_true", help="offline: proxies as `shoal up --secure`")
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    add_control_plane_flag(p)
    p.set_defaults(func=run)
