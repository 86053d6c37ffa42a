"""shoal.common: small pure helpers shared by layers that must not load each other.

Importing a submodule of `shoal.api` runs `shoal.api/__init__`, which loads every config kind
(about a second of pydantic model building on a loaded machine). Processes started per replica
by `shoal up` -- `python -m shoal.agent` and the sample apps -- need only a duration parser and
the RE2 limit, so those live here, beneath every layer, importing nothing of shoal.
"""
