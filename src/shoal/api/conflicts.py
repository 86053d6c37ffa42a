"""Two definitions of one resource (same kind, namespace and name): one wins, the other is an
error that names both places.

Without this the last file read silently replaced the first. The winner is deterministic and
does not flap: the definition already in force stays (found by the file it came from, so
editing it keeps it in force), and when none is (a cold start, or the one in force went
away), the first by path, then by position in the file. The loser is left out, not lost:
when the winner's definition goes away, the loser takes over on the next reload.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shoal.api.errors import ConfigError
from shoal.api.resource import Resource, ResourceKey

_NAME = ("metadata", "name")


def _winner(definitions: Sequence[Resource], in_force: Resource | None) -> Resource:
    if in_force is not None:
        # The definition in force is the first of its file equal to it (equality ignores
        # where it sits), or failing that the file's first. Not the very object in force
        # first: whether a re-read hands back that object (the document cache) or an equal
        # new one must not change which of two equal definitions wins, nor where the
        # error points.
        same_file = [d for d in definitions if d.origin.file == in_force.origin.file]
        for definition in same_file:
            if definition is in_force or definition == in_force:
                return definition
        if same_file:
            return same_file[0]
    return definitions[0]  # candidates come by path, then by position in the file


def _place(resource: Resource) -> str:
    return f"{resource.origin.file}:{resource.origin.line_of(_NAME)}"


def settle_conflicts(
    candidates: Sequence[Resource], in_force: Mapping[ResourceKey, Resource]
) -> tuple[list[Resource], list[ConfigError]]:
    """`candidates` (ordered by path, then position) with one definition per key, and an
    error for every definition left out. `in_force` is the accepted config so far."""
    by_key: dict[ResourceKey, list[Resource]] = {}
    for resource in candidates:
        by_key.setdefault(resource.key, []).append(resource)
    if len(by_key) == len(candidates):
        return list(candidates), []
    winners: dict[ResourceKey, Resource] = {}
    errors: list[ConfigError] = []
    for key, definitions in by_key.items():
        if len(definitions) < 2:
            continue
        previous = in_force.get(key)
        winner = winners[key] = _winner(definitions, previous)
        kept = previous is not None and winner.origin.file == previous.origin.file
        why = "is in force" if kept else "comes first"
        for loser in definitions:
            if loser is winner:
                continue  # the same object twice: a refused document fell back to it
            errors.append(
                loser.error(
                    _NAME,
                    f"{key[0]} {key[1]}/{key[2]} is defined twice: here and at "
                    f"{_place(winner)}, which {why} and is used; this definition is ignored "
                    "(rename or remove one of them)",
                )
            )
    out: list[Resource] = []
    emitted: set[ResourceKey] = set()
    for resource in candidates:
        winner = winners.get(resource.key, resource)
        if resource is winner and resource.key not in emitted:
            emitted.add(resource.key)
            out.append(resource)
    return out, errors
