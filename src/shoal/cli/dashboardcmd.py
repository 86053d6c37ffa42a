"""`shoal dashboard`: the URL of the control plane's web dashboard, opened in a browser.

The dashboard is served by the control plane itself (its admin port, `/dashboard/`), under
`shoal up` / `make demo` as well as standalone; this command checks that it answers, prints
the URL and opens it where a browser can show it (a desktop session, or `--browser`).
"""

from __future__ import annotations

import argparse
import os
import sys
import webbrowser

from shoal.cli.fetch import FetchError, add_control_plane_flag, control_plane_url, get_json


def _has_display() -> bool:
    # without a desktop, webbrowser would pick a text browser and take over the terminal
    return sys.platform == "darwin" or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )


def run(args: argparse.Namespace) -> int:
    base = control_plane_url(args.control_plane)
    try:
        get_json(f"{base}/dashboard/api/overview", "the control plane's dashboard")
    except FetchError as err:
        print(f"shoal dashboard: {err}", file=sys.stderr)
        return 1
    url = f"{base}/dashboard/"
    print(url)
    if args.browser if args.browser is not None else _has_display():
        webbrowser.open(url)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "dashboard",
        help="the control plane's web dashboard: service graph, sync state, config errors",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--browser",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="open it in a browser (default: when a desktop session is present)",
    )
    add_control_plane_flag(p)
    p.set_defaults(func=run)
