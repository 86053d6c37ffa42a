"""A bare HTTP client for the wire tests: requests and watch streams as the server sends them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

Obj = dict[str, Any]


class Wire:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Obj]:
        data = None if body is None else json.dumps(body)
        hdrs = {"Content-Type": content_type, **(headers or {})}
        async with self.session.request(method, self.base + path, data=data, headers=hdrs) as r:
            text = await r.text()
            return r.status, (json.loads(text) if text else {})

    async def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Obj:
        status, out = await self.call(method, path, body, **kw)
        assert status in (200, 201), (status, out)
        return out

    async def watch(self, path: str) -> AsyncIterator[Obj]:
        """Yield events until the server ends the stream."""
        async with self.session.get(self.base + path) as r:
            assert r.status == 200, await r.text()
            async for line in r.content:
                if line.strip():
                    yield json.loads(line)


def cm(name: str, labels: dict[str, str] | None = None, **data: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels or {}},
        "data": data,
    }
