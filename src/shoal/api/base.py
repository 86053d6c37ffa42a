"""The base of every config model, and small shared field types.

All models are frozen (config is a value, shared between proxies), forbid unknown
fields (a typo must not be silently ignored), and use Istio's camelCase names in YAML
while Python code uses snake_case.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict
from pydantic.alias_generators import to_camel
from pydantic.config import ExtraValues
from pydantic_core import PydanticCustomError

from shoal.api.hosts import check_host


def shoal_model_config(*, extra: ExtraValues = "forbid") -> ConfigDict:
    """Every shoal model's pydantic settings (a fresh dict for each class that uses them)."""
    return ConfigDict(extra=extra, frozen=True, alias_generator=to_camel, populate_by_name=True)


# Error type used by validators that check several fields but want the error to point
# at one of them; load.py appends the "shoal_field" context to the error location.
FIELD_ERROR_TYPE = "shoal_field"


class ApiModel(BaseModel):
    """Base class for every shoal config model."""

    model_config = shoal_model_config()


def field_error(path: str, message: str) -> PydanticCustomError:
    """An error located at `path` (dotted, list indexes as numbers) below the model."""
    return PydanticCustomError(FIELD_ERROR_TYPE, message, {FIELD_ERROR_TYPE: path})


# Integers in YAML must be integers: "80" or true is a mistake, not a port.
Port = Annotated[int, Strict(), Field(ge=1, le=65535)]
Int = Annotated[int, Strict()]
Bool = Annotated[bool, Strict()]
Host = Annotated[str, AfterValidator(check_host)]

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_LABEL_RE = re.compile(rf"^{_DNS_LABEL}$")
_SUBDOMAIN_RE = re.compile(rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$")


def _dns1123_label(value: str) -> str:
    if len(value) > 63 or not _LABEL_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid DNS-1123 label: lower-case letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters"
        )
    return value


def _dns1123_subdomain(value: str) -> str:
    if len(value) > 253 or not _SUBDOMAIN_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid DNS-1123 name: lower-case letters, digits, '-' and "
            "'.', starting and ending with a letter or digit, at most 253 characters"
        )
    return value


DnsLabel = Annotated[str, AfterValidator(_dns1123_label)]
DnsSubdomain = Annotated[str, AfterValidator(_dns1123_subdomain)]


def _export_target(value: str) -> str:
    if value in (".", "*", "~"):
        return value
    try:
        return _dns1123_label(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not '.', '*', '~' or a namespace name (a DNS-1123 label)"
        ) from None


# An `exportTo` entry: its own namespace (.), every namespace (*), none (~), or a namespace.
ExportTarget = Annotated[str, AfterValidator(_export_target)]


def _everywhere(value: list[str]) -> list[str]:
    for target in value:
        if target != "*":
            raise ValueError(
                f"exportTo {target!r}: limiting the namespaces that see a VirtualService or "
                "DestinationRule is not implemented yet (shoal exports both to every "
                "namespace); leave exportTo out or write '*'"
            )
    return value


# VirtualService/DestinationRule `exportTo`: only '*', the default, is implemented
ExportEverywhere = Annotated[list[ExportTarget], AfterValidator(_everywhere)]
