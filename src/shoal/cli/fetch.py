"""A small synchronous HTTP client for the CLI: GET a JSON document, with a timeout.

The CLI makes one or two requests and exits, so urllib (no event loop, no dependency) is
enough. Every failure becomes a `FetchError` whose message names the URL and says what
went wrong, which is what the user needs to fix a wrong `--control-plane` or a dead proxy.
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.request
from typing import Any

DEFAULT_CONTROL_PLANE = "http://127.0.0.1:15014"
ENV_CONTROL_PLANE = "SHOAL_CONTROL_PLANE"
TIMEOUT_S = 5.0


class FetchError(Exception):
    """A GET that did not produce a JSON document; str() is a message for the user."""


def control_plane_url(flag: str | None) -> str:
    """The control plane admin URL: the flag, else $SHOAL_CONTROL_PLANE, else the default.

    `host:port` without a scheme is accepted, as users type it that way.
    """
    url = flag or os.environ.get(ENV_CONTROL_PLANE) or DEFAULT_CONTROL_PLANE
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/")


def get_json(url: str, what: str, timeout: float = TIMEOUT_S) -> Any:
    """GET `url` and decode its JSON body; `what` names the peer in error messages."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body: bytes = response.read()
    except urllib.error.HTTPError as err:
        raise FetchError(f"{what} at {url} answered HTTP {err.code} {err.reason}") from err
    except urllib.error.URLError as err:
        raise FetchError(f"cannot reach {what} at {url}: {err.reason}") from err
    except TimeoutError as err:
        raise FetchError(f"{what} at {url} did not answer within {timeout:g}s") from err
    except (OSError, ValueError) as err:
        # ValueError: a malformed URL; OSError: a connection reset mid-body.
        raise FetchError(f"cannot reach {what} at {url}: {err}") from err
    try:
        return json.loads(body)
    except ValueError as err:
        raise FetchError(f"{what} at {url} did not answer JSON: {err}") from err


def add_control_plane_flag(p: argparse.ArgumentParser) -> None:
    """`--control-plane URL`, shared by every command that talks to a control plane."""
    p.add_argument(
        "--control-plane",
        metavar="URL",
        default=None,
        help=f"control plane admin URL (default: ${ENV_CONTROL_PLANE} or {DEFAULT_CONTROL_PLANE})",
    )
