"""The fake's pure parts: selector grammar and patch semantics, case by case (the wire and
kubectl tests cover them end to end; these pin the edge cases)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.kubeapi.errors import ApiError
from harness.kubeapi.patches import apply_patch, json_patch, merge_patch, strategic_merge_patch
from harness.kubeapi.selectors import (
    label_selector_object,
    parse_field_selector,
    parse_label_selector,
)

LABELS = {"app": "web", "tier": "front", "n": "5"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app!=web", False),
        ("app!=db", True),
        ("missing!=x", True),
        ("app in (web, db)", True),
        ("app in (db)", False),
        ("app notin (db)", True),
        ("missing notin (db)", True),
        ("app", True),
        ("!app", False),
        ("!missing", True),
        ("app=web,tier=front", True),
        ("app=web,tier=back", False),
        ("n>4", True),
        ("n<5", False),
        ("example.com/key", False),
        ("app=web, tier in (front,back), !missing", True),
    ],
)
def test_label_selector_grammar(selector: str, expected: bool) -> None:
    assert parse_label_selector(selector)(LABELS) is expected


@pytest.mark.parametrize("bad", ["app in (web", "app=web,", "a b", "app in web", "n>x", "=x"])
def test_bad_label_selectors_are_400(bad: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_label_selector(bad)
    assert err.value.code == 400


def test_label_selector_objects() -> None:
    sel = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front"]},
            {"key": "x", "operator": "DoesNotExist"},
        ],
    }
    assert label_selector_object(sel)(LABELS)
    assert not label_selector_object(
        {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}
    )(LABELS)
    assert label_selector_object(None)({}) and label_selector_object({})({})


def test_field_selectors() -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"nodeName": "n1"}}
    assert parse_field_selector("metadata.name=p,metadata.namespace!=x", "Pod")(pod)
    assert parse_field_selector("spec.nodeName==n1", "Pod")(pod)
    assert not parse_field_selector("metadata.name=q", "Pod")(pod)
    with pytest.raises(ApiError):
        parse_field_selector("spec.nodeName=n1", "ConfigMap")


def test_merge_patch_is_rfc7386() -> None:
    target = {"a": {"b": 1, "c": 2}, "l": [1, 2]}
    assert merge_patch(target, {"a": {"b": None, "d": 3}, "l": [3]}) == {
        "a": {"c": 2, "d": 3},
        "l": [3],
    }
    assert target == {"a": {"b": 1, "c": 2}, "l": [1, 2]}  # not mutated


def test_json_patch_ops_and_failures() -> None:
    doc: dict[str, Any] = {"a": [1, 2], "b": {"c~/d": 1}}
    out = json_patch(
        doc,
        [
            {"op": "add", "path": "/a/1", "value": 9},
            {"op": "add", "path": "/a/-", "value": 3},
            {"op": "replace", "path": "/b/c~0~1d", "value": 2},
            {"op": "copy", "from": "/a/0", "path": "/x"},
            {"op": "move", "from": "/x", "path": "/y"},
            {"op": "test", "path": "/y", "value": 1},
        ],
    )
    assert out == {"a": [1, 9, 2, 3], "b": {"c~/d": 2}, "y": 1}
    for bad in (
        [{"op": "remove", "path": "/nope"}],
        [{"op": "test", "path": "/a", "value": 0}],
        [{"op": "replace", "path": "/q", "value": 1}],
    ):
        with pytest.raises(ApiError) as err:
            json_patch(doc, bad)
        assert err.value.code == 422


def test_strategic_merge_patch_merges_by_key_and_honours_directives() -> None:
    pod = {
        "spec": {
            "containers": [
                {
                    "name": "a",
                    "image": "a:1",
                    "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
                },
                {"name": "b", "image": "b:1"},
            ],
            "tolerations": [{"key": "t1"}],
        },
        "metadata": {"finalizers": ["f1"]},
    }
    patch = {
        "metadata": {"finalizers": ["f2"]},
        "spec": {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
            "containers": [
                {
                    "name": "a",
                    "env": [{"name": "Y", "$patch": "delete"}, {"name": "Z", "value": "3"}],
                },
                {"name": "c", "image": "c:1"},
            ],
            "tolerations": [{"key": "t2"}],
        },
    }
    out = strategic_merge_patch(pod, patch)
    names = [c["name"] for c in out["spec"]["containers"]]
    assert names == ["b", "a", "c"]
    a = out["spec"]["containers"][1]
    assert a["image"] == "a:1"
    assert a["env"] == [{"name": "X", "value": "1"}, {"name": "Z", "value": "3"}]
    assert out["spec"]["tolerations"] == [{"key": "t2"}]  # no merge key: replaced
    assert out["metadata"]["finalizers"] == ["f1", "f2"]  # merge strategy for scalars
    replaced = strategic_merge_patch(
        pod, {"spec": {"containers": [{"name": "z"}, {"$patch": "replace"}]}}
    )
    assert replaced["spec"]["containers"] == [{"name": "z"}]
    gone = strategic_merge_patch(pod, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["f1"]}})
    assert gone["metadata"]["finalizers"] == []


def test_patch_dispatch_by_content_type() -> None:
    assert apply_patch("application/merge-patch+json; charset=utf-8", {}, {"a": 1}, crd=True) == {
        "a": 1
    }
    for ctype, crd in (
        ("application/strategic-merge-patch+json", True),
        ("application/apply-patch+yaml", False),
        ("text/plain", False),
    ):
        with pytest.raises(ApiError) as err:
            apply_patch(ctype, {}, {}, crd=crd)
        assert err.value.code == 415
