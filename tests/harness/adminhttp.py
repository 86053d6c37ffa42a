"""Tiny blocking HTTP helpers for admin endpoints (Envoy's and shoal's).

urllib is enough here: admin calls are rare, short, and need no keep-alive.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def request(
    method: str, url: str, *, timeout: float = 5.0, body: bytes | None = None
) -> tuple[int, bytes]:
    """Send one request and return (status, body); HTTP error statuses are returned, not raised."""
    req = urllib.request.Request(url, method=method, data=body)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read()


def get_json(url: str, *, timeout: float = 5.0) -> Any:
    """GET ``url`` and decode its JSON body; raise if the status is not 200."""
    status, body = request("GET", url, timeout=timeout)
    if status != 200:
        raise RuntimeError(f"GET {url} -> {status}: {body[:500]!r}")
    return json.loads(body)
