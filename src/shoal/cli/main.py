"""The `shoal` command: an argparse dispatcher; each subcommand lives in its own module.

Only the module of the command being run is imported: the modules behind `agent`, `up` or
`control-plane` pull in the generator, grpc and aiohttp, seconds of start-up on a loaded
machine that `shoal version`, `shoal tap` or an injected pod's `agent-wait` should not pay.
Without a known command (``--help``, a typo) every module registers, so help lists them all.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Mapping
from types import MappingProxyType

from shoal import __version__

# command -> the module whose register() adds it, in the order help lists them
COMMANDS: Mapping[str, str] = MappingProxyType(
    {
        "control-plane": "shoal.cli.controlplanecmd",
        "up": "shoal.cli.upcmd",
        "agent": "shoal.cli.agentcmd",
        "agent-wait": "shoal.cli.agentwait",
        "ca": "shoal.cli.cacmd",
        "install": "shoal.cli.installcmd",
        "analyze": "shoal.cli.analyze",
        "proxy-status": "shoal.cli.proxystatus",
        "proxy-config": "shoal.cli.proxyconfig",
        "stat": "shoal.cli.statcmd",
        "edges": "shoal.cli.statcmd",
        "dashboard": "shoal.cli.dashboardcmd",
        "tap": "shoal.cli.tapcmd",
        "diff": "shoal.cli.diffcmd",
        "top": "shoal.cli.topcmd",
        "bootstrap": "shoal.cli.bootstrapcmd",
    }
)


def _version(_: argparse.Namespace) -> int:
    print(f"shoal {__version__}")
    return 0


def _command(argv: list[str]) -> str | None:
    """The subcommand named in `argv`: the first word that is not a global option or its value."""
    words = iter(argv)
    for word in words:
        if word == "--log-level":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv` (default: every command, as help shows them)."""
    p = argparse.ArgumentParser(prog="shoal", description="A service mesh in Python.")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    sub = p.add_subparsers(dest="command", required=True)
    wanted = _command(argv) if argv is not None else None
    if wanted is not None and wanted in COMMANDS:
        modules = [COMMANDS[wanted]]
    elif wanted == "version":
        modules = []
    else:
        modules = list(dict.fromkeys(COMMANDS.values()))
    for name in modules:
        importlib.import_module(name).register(sub)
    ver = sub.add_parser("version", help="print the version")
    ver.set_defaults(func=_version)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser(argv).parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # watchfiles logs every change at INFO: noise when the folder also holds logs
    logging.getLogger("watchfiles").setLevel(max(logging.WARNING, logging.root.level))
    # the Kubernetes client logs every request at INFO: thousands on a cold sync
    for name in ("httpx2", "httpcore2"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.root.level))
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
