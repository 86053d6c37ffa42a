"""Warnings for `shoal analyze`: configuration that is valid but probably not what was meant.

This is the hook for "classic mistake" checks (a VirtualService for a host nothing
defines, a DestinationRule whose subsets no route uses, ...). Each check takes the accepted
resources and returns `ConfigError`s (built with `Resource.error` so they carry file, line
and field); `analyze` prints them as warnings, which never change its exit status.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from shoal.api import ConfigError, Resource
from shoal.api.kinds import FILE_KIND_SPECS
from shoal.api.kubernetes import SECRET_NOTE, KubeSecretSpec
from shoal.cli import routechecks

Check = Callable[[Sequence[Resource]], list[ConfigError]]

# Add checks here; each must be pure and cheap (analyze runs them all on every call).
CHECKS: tuple[Check, ...] = (
    routechecks.subsets_without_workloads,
    routechecks.timeouts_shorter_than_retries,
)


def find_warnings(resources: Sequence[Resource]) -> list[ConfigError]:
    """Every warning every check finds in `resources`, sorted by file and line."""
    found: list[ConfigError] = []
    for check in CHECKS:
        found += check(resources)
    return sorted(set(found))


def find_notes(resources: Sequence[Resource]) -> list[ConfigError]:
    """A note for every resource shoal reads in file mode but does not use (a Deployment, a
    ServiceAccount, an Opaque Secret beside the Istio YAML), saying what to use instead."""
    found: list[ConfigError] = []
    for resource in resources:
        why = FILE_KIND_SPECS[resource.kind].note
        if isinstance(resource.spec, KubeSecretSpec) and not resource.spec.is_tls:
            why = SECRET_NOTE
        if why:
            found.append(resource.error((), f"not used by shoal in file mode ({why})"))
    return sorted(found)
