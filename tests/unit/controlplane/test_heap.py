"""The config heap is frozen after a reload; frozen cyclic garbage is still reclaimed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from shoal.controlplane.heap import HeapPolicy


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_a_reload_freezes_the_heap_and_a_later_full_collection_frees_frozen_cycles() -> None:
    policy = HeapPolicy(full_collect_every_s=3600)
    garbage = Node()
    ref = weakref.ref(garbage)
    del garbage
    policy.after_reload()
    assert gc.get_freeze_count() > 0
    gc.collect()
    assert ref() is not None  # frozen: the collector does not look at it
    policy.full_collect_every_s = 0
    policy.after_reload()
    assert ref() is None
