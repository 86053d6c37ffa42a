"""Checks that a regular expression means the same to Envoy (RE2) as to us.

Envoy evaluates `regex` matches with Google RE2, which guarantees linear time by leaving
out lookaround, backreferences, atomic groups and possessive quantifiers. Python's `re`
accepts all of those, so compiling with `re` alone would let through patterns Envoy
rejects (and it would NACK the whole route configuration).
"""

from __future__ import annotations

import re
import warnings

_GROUP_PROBLEMS = (
    ("(?=", "lookahead '(?=...)'"),
    ("(?!", "negative lookahead '(?!...)'"),
    ("(?<=", "lookbehind '(?<=...)'"),
    ("(?<!", "negative lookbehind '(?<!...)'"),
    ("(?P=", "named backreference '(?P=name)'"),
    ("(?>", "atomic group '(?>...)'"),
    ("(?(", "conditional group '(?(...)'"),
)


def _skip_class(pattern: str, start: int) -> int:
    """Return the index after the character class starting at `start` ('[')."""
    i = start + 1
    if pattern.startswith("^", i):
        i += 1
    if pattern.startswith("]", i):  # a leading ']' is a literal
        i += 1
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
        elif pattern[i] == "]":
            return i + 1
        else:
            i += 1
    return i


def re2_problem(pattern: str) -> str | None:
    """Say what in `pattern` RE2 does not support, or None if nothing is found."""
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            escaped = pattern[i + 1 : i + 2]
            if escaped.isdigit() and escaped != "0":
                return f"backreference '\\{escaped}'"
            if escaped == "Z":
                return "'\\Z' (RE2 spells end of text '\\z')"
            i += 2
            continue
        if char == "[":
            i = _skip_class(pattern, i)
            continue
        for prefix, what in _GROUP_PROBLEMS:
            if pattern.startswith(prefix, i):
                return what
        if char in "*+?}" and pattern.startswith("+", i + 1):
            return f"possessive quantifier '{char}+'"
        i += 1
    return None


def check_regex(pattern: str) -> str:
    """Return `pattern` if both RE2 and Python can use it, else raise ValueError."""
    problem = re2_problem(pattern)
    if problem is not None:
        raise ValueError(
            f"regex {pattern!r} uses {problem}, which Envoy's RE2 engine does not support"
        )
    # RE2's end-of-text is \z; Python calls it \Z. POSIX classes like [[:alpha:]] are
    # valid RE2 but make Python warn about nested sets, which is noise here.
    translated = re.sub(r"(?<!\\)((?:\\\\)*)\\z", r"\1\\Z", pattern)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            re.compile(translated)
    except re.error as exc:
        raise ValueError(f"invalid regex {pattern!r}: {exc}") from None
    return pattern
