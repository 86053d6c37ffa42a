"""The RE2 program-size limit every shoal bootstrap sets and every config regex is checked by.

Istio's bootstrap sets the same limit (extractRuntimeFlags in pkg/bootstrap); Envoy's default
(100) refuses ordinary patterns. shoal.api.re2 checks patterns against it, the agent's
bootstrap sets it as Envoy's runtime key; both read it from here so neither loads the other.
"""

from __future__ import annotations

REGEX_PROGRAM_SIZE_LIMIT = 32768
RUNTIME_KEY = "re2.max_program_size.error_level"
