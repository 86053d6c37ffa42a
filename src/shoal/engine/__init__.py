"""shoal.engine: the incremental engine, the one place with state across snapshots.

`Pipeline` is the whole pure path from a change set to what every proxy should hold:
store (parse, validate, keep last good), snapshot, and the generation that reuses what the
previous one built. The control plane, `shoal analyze`, the tests and the benchmarks all
drive it the same way. No I/O here: callers read files and hand over their texts.
"""

from shoal.engine.pipeline import Build, Pipeline

__all__ = ["Build", "Pipeline"]
