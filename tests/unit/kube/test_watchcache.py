"""The informer's sans-IO cache: lists diff against what is held, events move the RV on."""

from __future__ import annotations

from typing import Any

from shoal.kube.watchcache import WatchCache


def _obj(name: str, rv: str, ns: str = "shop", **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "resourceVersion": rv, "labels": labels}}


def _by_service(obj: Any) -> list[str]:
    svc = obj["metadata"]["labels"].get("kubernetes.io/service-name")
    return [f"{obj['metadata']['namespace']}/{svc}"] if svc else []


def test_a_relist_deletes_what_vanished_while_not_watching() -> None:
    cache = WatchCache()
    cache.replace([_obj("a", "1"), _obj("b", "2")], "2")
    events = cache.replace([_obj("b", "2"), _obj("c", "7")], "9")
    assert [(e.type, e.key) for e in events] == [
        ("DELETED", ("shop", "a")),
        ("ADDED", ("shop", "c")),
    ]
    assert events[0].old == _obj("a", "1")
    assert cache.resource_version == "9"
    assert sorted(cache.objects) == [("shop", "b"), ("shop", "c")]


def test_a_relist_reports_objects_modified_meanwhile() -> None:
    cache = WatchCache()
    cache.replace([_obj("a", "1")], "1")
    (event,) = cache.replace([_obj("a", "5", app="x")], "5")
    assert event.type == "MODIFIED"
    assert event.old == _obj("a", "1") and event.new == _obj("a", "5", app="x")


def test_every_event_moves_the_resource_version_bookmarks_too() -> None:
    cache = WatchCache()
    cache.replace([], "3")
    assert cache.apply("BOOKMARK", {"metadata": {"resourceVersion": "12"}}) is None
    assert cache.resource_version == "12"
    added = cache.apply("ADDED", _obj("a", "13"))
    assert added is not None and added.type == "ADDED"
    deleted = cache.apply("DELETED", _obj("a", "14"))
    assert deleted is not None and deleted.type == "DELETED"
    assert cache.resource_version == "14"
    assert len(cache) == 0


def test_replayed_events_change_nothing() -> None:
    cache = WatchCache()
    cache.replace([_obj("a", "4")], "4")
    assert cache.apply("ADDED", _obj("a", "4")) is None
    assert cache.apply("MODIFIED", _obj("a", "4")) is None
    assert cache.apply("DELETED", _obj("zz", "5")) is None


def test_indexes_follow_every_change() -> None:
    cache = WatchCache({"service": _by_service})
    label = {"kubernetes.io/service-name": "reviews"}
    cache.replace([_obj("reviews-1", "1", **label), _obj("other", "2")], "2")
    assert [o["metadata"]["name"] for o in cache.by_index("service", "shop/reviews")] == [
        "reviews-1"
    ]
    cache.apply("ADDED", _obj("reviews-2", "3", **label))
    cache.apply("MODIFIED", _obj("reviews-1", "4", **{"kubernetes.io/service-name": "ratings"}))
    assert [o["metadata"]["name"] for o in cache.by_index("service", "shop/reviews")] == [
        "reviews-2"
    ]
    assert len(cache.by_index("service", "shop/ratings")) == 1
    cache.apply("DELETED", _obj("reviews-2", "5", **label))
    assert cache.by_index("service", "shop/reviews") == []


def test_cluster_scoped_objects_are_keyed_without_a_namespace() -> None:
    cache = WatchCache()
    cache.replace([{"metadata": {"name": "shop", "resourceVersion": "1"}}], "1")
    assert list(cache.objects) == [("", "shop")]
