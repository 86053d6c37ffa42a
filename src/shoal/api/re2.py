"""Regular expressions checked by the engine Envoy runs them with: Google RE2 (`google-re2`).

Envoy evaluates every `regex` (URI, header and query matches, CORS origins, regex rewrites)
with RE2 and refuses the whole route table when one pattern does not compile, or when its
compiled program is larger than the runtime limit `re2.max_program_size.error_level`
(Envoy's default is 100, which ordinary patterns such as `/users/[a-z0-9-]{1,64}/orders`
exceed). Compiling with the real engine here, with the limit every bootstrap shoal writes
sets (`REGEX_PROGRAM_SIZE_LIMIT`, Istio's value), makes such a pattern a load error with its
field instead of a NACK.
"""

from __future__ import annotations

import re2

from shoal.common.re2limits import REGEX_PROGRAM_SIZE_LIMIT, RUNTIME_KEY

__all__ = [
    "REGEX_PROGRAM_SIZE_LIMIT",
    "RUNTIME_KEY",
    "capture_groups",
    "check_regex",
    "program_size",
]


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # the error comes back as an exception; no stderr noise
    return options


# RE2 leaves these out to guarantee linear time; its errors name only the syntax.
_HINTS = (
    ("invalid perl operator", "RE2 has no lookaround, atomic or conditional groups"),
    ("invalid escape sequence: \\1", "RE2 has no backreferences"),
    ("invalid escape sequence: \\Z", "RE2 spells end of text '\\z'"),
    ("bad repetition operator: *+", "RE2 has no possessive quantifiers"),
    ("bad repetition operator: ++", "RE2 has no possessive quantifiers"),
    ("bad repetition operator: ?+", "RE2 has no possessive quantifiers"),
    ("invalid repetition size", "RE2 allows at most 1000 repetitions"),
)


def _reason(error: object) -> str:
    text = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
    for needle, hint in _HINTS:
        if needle in text:
            return f"{text} ({hint})"
    # "\2".."\9" are backreferences too
    if text.startswith("invalid escape sequence: \\") and text[-1:].isdigit():
        return f"{text} (RE2 has no backreferences)"
    return text


def program_size(pattern: str) -> int:
    """The size RE2 gives `pattern`'s compiled program; ValueError if it does not compile."""
    try:
        compiled = re2.compile(pattern, _options())
    except re2.error as exc:
        raise ValueError(
            f"invalid regex {pattern!r}: {_reason(exc.args[0] if exc.args else exc)}"
        ) from None
    except UnicodeEncodeError:
        raise ValueError(f"regex {pattern!r} is not valid Unicode text") from None
    return int(compiled.programsize)


def check_regex(pattern: str) -> str:
    """Return `pattern` if Envoy's RE2 accepts it within shoal's program-size limit."""
    if not pattern:
        raise ValueError("regex must not be empty (Envoy requires at least one character)")
    size = program_size(pattern)
    if size > REGEX_PROGRAM_SIZE_LIMIT:
        raise ValueError(
            f"regex {pattern!r} is too large for Envoy: its RE2 program size is {size}, over "
            f"the limit of {REGEX_PROGRAM_SIZE_LIMIT} that shoal's bootstraps set ({RUNTIME_KEY})"
        )
    return pattern


def capture_groups(pattern: str) -> int:
    """How many capture groups `pattern` has (for `\\N` in a regex rewrite)."""
    return int(re2.compile(pattern, _options()).groups)
