"""shoal.kube.patchdiff: RFC 6902 patches that the jsonpatch library applies back exactly."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal.kube.patchdiff import diff, same

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["a", "b"]))
_keys = st.sampled_from(["a", "b", "x/y", "t~n", "c"])
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=4)),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_json, _json)
def test_applying_the_diff_gives_the_target(before: Any, after: Any) -> None:
    ops = diff(before, after)
    if not ops:
        assert same(before, after)
        return
    if ops[0]["path"] == "":  # a whole-document replacement
        assert ops == [{"op": "replace", "path": "", "value": after}]
        return
    result = jsonpatch.apply_patch(copy.deepcopy(before), ops)
    assert same(result, after)


@pytest.mark.parametrize(
    ("before", "after", "ops"),
    [
        ({"a": 1}, {"a": 1}, []),
        ({"a": True}, {"a": 1}, [{"op": "replace", "path": "/a", "value": 1}]),
        ({}, {"x/y": {"k": 1}}, [{"op": "add", "path": "/x~1y", "value": {"k": 1}}]),
        (
            {"l": [1]},
            {"l": [1, 2, 3]},
            [{"op": "add", "path": "/l/-", "value": 2}, {"op": "add", "path": "/l/-", "value": 3}],
        ),
        ({"l": [1, 2]}, {"l": [2]}, [{"op": "replace", "path": "/l", "value": [2]}]),
        ({"a": 1, "b": 2}, {"b": 2}, [{"op": "remove", "path": "/a"}]),
    ],
)
def test_operations_are_direct(before: Any, after: Any, ops: list[dict[str, Any]]) -> None:
    assert diff(before, after) == ops
