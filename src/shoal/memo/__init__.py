"""The one memo primitive of shoal's incremental engine (`IdentityMemo`).

Everything that lets a rebuild reuse what the previous one made, keyed by the identity of its
inputs, goes through this one class, with one of two lifetimes: *generations* (an entry lives
while builds keep asking for it: `rotate` at the start of each build) or *a size bound* (least
recently used first). Instances are owned by what builds (the pipeline's snapshot memo, a
generator), never module globals: `tests/unit/engine/test_no_module_state.py` scans the pure
and engine layers for module-level mutable state.
"""

from shoal.memo.identity import IdentityMemo

__all__ = ["IdentityMemo"]
