"""Keys of `http(s)` `jwksUri`s, fetched by the control plane (Istio's istiod does the same).

Generation is pure, so the keys travel like the files policies name: in `MeshSnapshot.files`,
keyed by the URI as written (generate/jwt.py inlines them as `local_jwks`). `JwksCache.files`
is what a reload asks for: the last good keys of the URIs the config names now, never I/O.
`JwksCache.run` does the fetching: a URI the config names for the first time is fetched at
once, and every URI again each `refresh_s`; each fetch waits at most the rule's `timeout`
(default 5 s, Istio's). A fetch that fails (issuer down, slow, not a JSON Web Key Set) keeps
the last good keys and is logged; when keys change, `on_change` asks for a reload.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import aiohttp

from shoal.api import Resource
from shoal.api.requestauthentication import RequestAuthenticationSpec

log = logging.getLogger("shoal.sources")

DEFAULT_TIMEOUT_S = 5.0
# Istio's PILOT_JWT_PUB_KEY_REFRESH_INTERVAL is 20 min; keys rotate rarely, a minute is cheap
DEFAULT_REFRESH_S = 60.0
# a URI with no keys yet (issuer down at start) is tried again this soon
RETRY_S = 2.0


def wanted(resources: Iterable[Resource]) -> dict[str, float]:
    """Every http(s) jwksUri the config names, with how long a fetch of it may take (the
    shortest `timeout` among the rules naming it)."""
    out: dict[str, float] = {}
    for res in resources:
        if isinstance(res.spec, RequestAuthenticationSpec):
            for rule in res.spec.jwt_rules:
                url = rule.jwks_url
                if url is not None:
                    timeout = rule.timeout or DEFAULT_TIMEOUT_S
                    out[url] = min(out.get(url, timeout), timeout)
    return out


def _key_set(text: str) -> str:
    """`text` if it is a JSON Web Key Set, else ValueError saying why."""
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError('not a JSON Web Key Set ({"keys": [...]})')
    return text


@dataclass
class JwksCache:
    """Last good keys by URI, and the loop that keeps them fresh (see the module doc)."""

    on_change: Callable[[], None]
    refresh_s: float = DEFAULT_REFRESH_S

    def __post_init__(self) -> None:
        self.keys: dict[str, str] = {}
        self._wanted: dict[str, float] = {}
        self._new = asyncio.Event()
        # URI -> why its last fetch failed (for /debug views and tests)
        self.failures: dict[str, str] = {}

    def files(self, resources: Iterable[Resource]) -> dict[str, str]:
        """The keys of the URIs `resources` name (those fetched so far). Notes new URIs, for
        `run` to fetch at once."""
        self._wanted = wanted(resources)
        if any(url not in self.keys and url not in self.failures for url in self._wanted):
            self._new.set()
        return {url: self.keys[url] for url in self._wanted if url in self.keys}

    async def _fetch(self, session: aiohttp.ClientSession, url: str, limit_s: float) -> bool:
        """Fetch `url` within `limit_s`; True if its keys changed."""
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=limit_s)) as resp:
                if resp.status != 200:
                    raise ValueError(f"HTTP {resp.status}")
                text = _key_set(await resp.text())
        except (aiohttp.ClientError, TimeoutError, ValueError, UnicodeDecodeError) as err:
            why = str(err) or type(err).__name__
            if self.failures.get(url) != why:
                kept = "keeping the last good keys" if url in self.keys else "no keys yet"
                log.warning("jwksUri %s: fetch failed (%s); %s", url, why, kept)
            self.failures[url] = why
            return False
        self.failures.pop(url, None)
        if self.keys.get(url) == text:
            return False
        self.keys[url] = text
        log.info("jwksUri %s: keys fetched", url)
        return True

    async def refresh(self) -> None:
        """Fetch every wanted URI once (concurrently); ask for a reload if keys changed."""
        targets = dict(self._wanted)
        async with aiohttp.ClientSession() as session:
            fetches = (self._fetch(session, url, limit) for url, limit in targets.items())
            changed = await asyncio.gather(*fetches)
        # keys of URIs no longer named are dropped: a later rule naming one fetches again
        for url in set(self.keys) - set(self._wanted):
            del self.keys[url]
        if any(changed):
            self.on_change()

    async def run(self, stopping: asyncio.Event) -> None:
        """Refresh at once when a new URI appears, else every `refresh_s`, until `stopping`."""
        while not stopping.is_set():
            self._new.clear()
            if self._wanted:
                await self.refresh()
            missing = any(url not in self.keys for url in self._wanted)
            wait_s = min(self.refresh_s, RETRY_S) if missing else self.refresh_s
            waits = [asyncio.ensure_future(e.wait()) for e in (self._new, stopping)]
            try:
                await asyncio.wait(waits, timeout=wait_s, return_when="FIRST_COMPLETED")
            finally:
                for w in waits:
                    w.cancel()
