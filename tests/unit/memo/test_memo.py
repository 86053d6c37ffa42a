"""The identity memo: by generations it keeps what the last build used and drops the rest;
by size it keeps the most recently used."""

from __future__ import annotations

import gc
import weakref

from shoal.memo import Memo


class Key:
    """A key object that can be watched for being freed."""


def test_an_entry_lives_while_builds_use_it_and_goes_after_one_that_does_not() -> None:
    memo: Memo[str] = Memo()
    kept, dropped = Key(), Key()
    made: list[str] = []

    def make(name: str) -> str:
        made.append(name)
        return name

    memo.rotate()
    assert memo.get((kept,), lambda: make("kept")) == "kept"
    memo.get((dropped,), lambda: make("dropped"))
    memo.rotate()  # a build that uses only `kept`
    assert memo.get((kept,), lambda: make("again")) == "kept"
    memo.rotate()  # the next build: `dropped` was not used by the last one
    assert made == ["kept", "dropped"] and len(memo) == 1
    watch = weakref.ref(dropped)
    del dropped
    gc.collect()
    assert watch() is None  # the memo no longer holds the superseded input


def test_keys_are_by_identity_not_equality() -> None:
    memo: Memo[int] = Memo()
    a, b = [1, 2], [1, 2]  # equal, two objects
    assert memo.get((a,), lambda: 1) == 1
    assert memo.get((b,), lambda: 2) == 2


def test_a_sized_memo_drops_the_least_recently_used() -> None:
    memo: Memo[str] = Memo(size=2)
    a, b, c = Key(), Key(), Key()
    memo.get((a,), lambda: "a")
    memo.get((b,), lambda: "b")
    assert memo.get((a,), lambda: "a again") == "a"  # a is now the most recent
    memo.get((c,), lambda: "c")  # b goes
    assert memo.get((b,), lambda: "b again") == "b again"
    assert (memo.hits, memo.misses) == (1, 4)


def test_a_successor_finds_what_its_predecessor_made_and_keeps_only_what_it_used() -> None:
    first: Memo[str] = Memo(identity=False)
    first.get(("a", 1), lambda: "made a")
    first.get(("b", 1), lambda: "made b")
    second = first.successor()
    assert second.get(("a", 1), lambda: "again") == "made a"  # equal keys: by value
    assert second.current() == {("a", 1): "made a"}
    third = second.successor()
    assert third.get(("b", 1), lambda: "b again") == "b again"  # second did not use b
    assert first.current() == {("a", 1): "made a", ("b", 1): "made b"}  # left as it was
