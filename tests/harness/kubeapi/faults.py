"""Faults tests can inject into the fake API server: errors, slow answers, dropped watches.

A fault matches requests by method, path (regular expression, searched) and whether it is a
watch, and fires ``count`` times (None: until cleared). Dropping or expiring the watches that
are open right now is done on the server (``KubeAPIServer.drop_watches``, ``expire_watches``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class Fault:
    action: str  # "error" or "delay"
    code: int = 500
    seconds: float = 0.0
    count: int | None = 1
    method: str | None = None
    path: str | None = None
    watch: bool | None = None
    fired: int = field(default=0)

    def matches(self, method: str, path: str, is_watch: bool) -> bool:
        if self.count is not None and self.fired >= self.count:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        if self.watch is not None and self.watch != is_watch:
            return False
        return not (self.path and not re.search(self.path, path))


class Faults:
    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        self._faults.append(fault)
        return fault

    def clear(self) -> None:
        self._faults.clear()

    def take(self, method: str, path: str, is_watch: bool) -> list[Fault]:
        """The faults this request triggers (each counted as fired)."""
        hit = [f for f in self._faults if f.matches(method, path, is_watch)]
        for f in hit:
            f.fired += 1
        self._faults = [f for f in self._faults if f.count is None or f.fired < f.count]
        return hit
