"""`shoal analyze DIR`: load a config directory as the control plane would and report every
problem at once, with file and line, before anything reaches a proxy.

It runs the same pipeline as `shoal control-plane` (`read_changes`, then `Pipeline.apply`, the
policy files read the same way), so what it reports is exactly what the control plane would
refuse.
Exit status: 0 when there is no error (warnings allowed), 1 when there is any, 2 when
DIR cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoal.api import ConfigError
from shoal.api.gatewayapi.attach import gateway_api_status
from shoal.api.gatewayapi.report import status_lines
from shoal.api.validate import service_ports
from shoal.cli.checks import find_notes, find_warnings
from shoal.cli.limits import add_max_file_bytes, add_namespace
from shoal.cli.tables import print_json
from shoal.engine import Pipeline
from shoal.sources.directory import DirCache, read_changes
from shoal.sources.filetext import DEFAULT_MAX_FILE_BYTES
from shoal.sources.policyfiles import read_policy_files


@dataclass(frozen=True)
class Report:
    files: int
    resources: int
    errors: tuple[ConfigError, ...]  # sorted by file, then line
    warnings: tuple[ConfigError, ...]
    # resources read but not used in file mode (Deployments, ServiceAccounts, ...)
    notes: tuple[ConfigError, ...] = ()
    # Gateway API status conditions of the accepted Gateways and routes
    statuses: tuple[ConfigError, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "resources": self.resources,
            "errors": [e.to_json() for e in self.errors],
            "warnings": [w.to_json() for w in self.warnings],
            "notes": [n.to_json() for n in self.notes],
            "statuses": [s.to_json() for s in self.statuses],
        }


def analyze(
    root: Path, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES, namespace: str = "default"
) -> Report:
    """Load every config file under `root` and collect its errors and warnings
    (`namespace`: where documents naming none belong, unless their folder says)."""
    cache = DirCache(max_bytes=max_file_bytes)
    pipeline = Pipeline("analyze", policy_files=lambda res: read_policy_files(root, res))
    pipeline.apply(read_changes(root, cache, None, namespace))
    resources = pipeline.store.resources

    def order(e: ConfigError) -> tuple[str, int, str, str]:
        return (e.file, e.line, e.field, e.message)

    return Report(
        files=len(cache.entries),
        resources=len(resources),
        errors=tuple(sorted(pipeline.errors, key=order)),
        warnings=tuple(sorted(find_warnings(resources), key=order)),
        notes=tuple(sorted(find_notes(resources), key=order)),
        statuses=tuple(
            sorted(
                status_lines(resources, gateway_api_status(resources, service_ports(resources))),
                key=order,
            )
        ),
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def summary(report: Report) -> str:
    """The last line of the report: counts a user (or CI log) reads first."""
    if report.errors:
        bad_files = len({e.file for e in report.errors})
        text = f"{_plural(len(report.errors), 'error')} in {_plural(bad_files, 'file')}"
    elif report.warnings:
        text = f"no errors: {_plural(report.resources, 'resource')}"
    else:
        return f"no problems found: {_plural(report.resources, 'resource')}"
    if report.warnings:
        text += f", {_plural(len(report.warnings), 'warning')}"
    return text


def _warning_line(w: ConfigError, word: str = "warning") -> str:
    # Same shape as an error line, with the word after file:line so grep tells them apart.
    where = f"{w.file}:{w.line}"
    return f"{where}: {word}: {str(w).removeprefix(where + ': ')}"


def run(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    if not root.is_dir():
        print(f"shoal analyze: {root}: not a directory", file=sys.stderr)
        return 2
    report = analyze(root, args.max_file_bytes, args.namespace)
    if args.output == "json":
        print_json(report.to_json())
    else:
        for error in report.errors:
            print(error)
        for warning in report.warnings:
            print(_warning_line(warning))
        for note in report.notes:
            print(_warning_line(note, "note"))
        for status in report.statuses:
            print(_warning_line(status, "status"))
        if report.files == 0:
            print(f"shoal analyze: no *.yaml or *.yml files under {root}", file=sys.stderr)
        print(summary(report))
    return 1 if report.errors else 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "analyze",
        help="validate a directory of mesh YAML and report every problem",
        description="Load every *.yaml/*.yml file under DIR as the control plane would and "
        "print each problem as FILE:LINE: Kind ns/name: field: message. "
        "Exit 1 if there is any error.",
    )
    p.add_argument("dir", metavar="DIR", help="folder of Istio-compatible YAML files")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    add_max_file_bytes(p)
    add_namespace(p)
    p.set_defaults(func=run)
