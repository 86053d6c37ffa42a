"""The sample service's knobs: what it calls, and which faults it injects.

Knobs are set at start (flags or environment) and changed at run time through
`POST /admin/knobs`, so a demo can make one replica misbehave without restarting it.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shoal.common.duration import format_duration, parse_duration

T = TypeVar("T")


def parse_latency(value: str | float) -> float:
    """Seconds from an Istio-style duration ("200ms", "1s") or a plain number of seconds."""
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        try:
            seconds = float(value)
        except ValueError:
            seconds = parse_duration(value)
    if seconds < 0:
        raise ValueError(f"latency must not be negative, got {value!r}")
    return seconds


def split_upstreams(text: str) -> tuple[str, ...]:
    """The upstream URLs of a comma-separated list, blanks dropped."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def arg_type(parse: Callable[[str], T], what: str) -> Callable[[str], T]:
    """An argparse `type` that reports `what` was expected instead of a Python traceback."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{what}: {exc}") from None

    return convert


def parse_rate(text: str) -> float:
    """A fraction between 0 and 1."""
    rate = float(text)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"{rate} is not between 0 and 1")
    return rate


def parse_flag(value: str) -> bool:
    """A boolean environment variable: 1/true/yes/on."""
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclasses.dataclass(frozen=True)
class Knobs:
    """One consistent set of knobs; replaced as a whole so a request never sees half an update."""

    error_rate: float = 0.0
    error_code: int = 503
    latency: float = 0.0
    upstreams: tuple[str, ...] = ()
    require_upstreams: bool = False
    upstream_timeout: float = 2.0

    def to_json(self) -> dict[str, Any]:
        return {
            "error_rate": self.error_rate,
            "error_code": self.error_code,
            "latency": format_duration(self.latency),
            "upstreams": list(self.upstreams),
            "require_upstreams": self.require_upstreams,
            "upstream_timeout": format_duration(self.upstream_timeout),
        }


class KnobsUpdate(BaseModel):
    """The body of `POST /admin/knobs`: every field optional, unknown fields refused."""

    model_config = ConfigDict(extra="forbid")

    error_rate: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    error_code: Annotated[int, Field(ge=100, le=599)] | None = None
    latency: float | None = None
    upstreams: list[str] | None = None
    require_upstreams: bool | None = None
    upstream_timeout: float | None = None

    @field_validator("latency", "upstream_timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return parse_latency(value)
        return value

    def apply(self, knobs: Knobs) -> Knobs:
        """`knobs` with the fields this update sets replaced."""
        changes: dict[str, Any] = {
            name: value
            for name, value in self.model_dump(exclude_unset=True).items()
            if value is not None
        }
        if "upstreams" in changes:
            changes["upstreams"] = tuple(changes["upstreams"])
        return dataclasses.replace(knobs, **changes)
