"""The one memo primitive of shoal's incremental engine (`Memo`).

Everything that lets a rebuild reuse what an earlier one made goes through this one class:
keyed by the identity of its inputs (or by value, for small keys made afresh), with one of
two lifetimes: *generations* (an entry lives while builds keep asking for it) or *a size bound*
(least recently used first). Instances are owned by what builds (the pipeline's snapshot memo,
a generator's virtual hosts, the xDS server's map and message memos), never module globals:
`tests/unit/engine/test_no_module_state.py` scans for module-level mutable state.
"""

from shoal.memo.memo import Memo

__all__ = ["Memo"]
