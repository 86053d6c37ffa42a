"""The pipeline: a change set in, a generation and what changed (`PushRequest`) out."""

from __future__ import annotations

from shoal.api import Change
from shoal.engine import Pipeline
from shoal.model import Endpoint, RegistryInstance
from shoal.model.push import INSTANCE

from ..generate.meshcfg import RATINGS, REVIEWS

REVIEWS_HOST = "reviews.default.svc.cluster.local"
RATINGS_HOST = "ratings.shop.svc.cluster.local"


def _loaded() -> Pipeline:
    pipeline = Pipeline("t")
    generation, push = pipeline.apply(
        [Change.file("reviews.yaml", REVIEWS), Change.file("ratings.yaml", RATINGS)]
    )
    assert push.full and generation.snapshot.version == "t.1"
    return pipeline


def test_nothing_changed_is_an_empty_push_and_the_same_generation() -> None:
    pipeline = _loaded()
    before = pipeline.generation
    generation, push = pipeline.apply([Change.file("reviews.yaml", "# moved\n" + REVIEWS)])
    assert push.empty and generation is before
    generation, push = pipeline.apply([])
    assert push.empty and generation is before


def test_an_endpoint_edit_names_its_host_and_only_registry_kinds() -> None:
    pipeline = _loaded()
    edited = RATINGS.replace("10.0.1.1", "10.0.1.2")
    generation, push = pipeline.apply([Change.file("ratings.yaml", edited)])
    assert push.registry_only and not push.full
    assert push.kinds == {"ServiceEntry"}
    assert push.keys == {("ServiceEntry", "shop", "ratings")}
    assert push.hosts == {RATINGS_HOST}
    assert push.namespaces == {"shop"}
    assert generation.snapshot.version == "t.2"


def test_a_routing_edit_names_the_hosts_its_rules_are_for() -> None:
    pipeline = _loaded()
    edited = REVIEWS.replace("weight: 80", "weight: 70").replace("weight: 20", "weight: 30")
    _, push = pipeline.apply([Change.file("reviews.yaml", edited)])
    assert push.kinds == {"VirtualService"} and not push.registry_only
    assert push.hosts == {REVIEWS_HOST}


def test_deleting_a_file_removes_its_resources_and_a_new_namespace_is_full() -> None:
    pipeline = _loaded()
    generation, push = pipeline.apply([Change.file("ratings.yaml", None)])
    assert RATINGS_HOST not in generation.snapshot.services
    assert push.full  # namespace "shop" went: short names may resolve differently now
    assert ("ServiceEntry", "shop", "ratings") in push.keys


def test_instances_are_a_registry_change_of_their_host() -> None:
    pipeline = _loaded()
    instance = RegistryInstance(RATINGS_HOST, Endpoint("10.9.9.9"), namespace="shop")
    generation, push = pipeline.apply(instances=[instance])
    assert push.kinds == {INSTANCE} and push.hosts == {RATINGS_HOST}
    assert "10.9.9.9" in [e.address for e in generation.snapshot.services[RATINGS_HOST].endpoints]
    _, again = pipeline.apply(instances=[instance])
    assert again.empty


def test_a_refused_edit_keeps_the_last_good_config_and_reports_the_error() -> None:
    pipeline = _loaded()
    before = pipeline.generation
    broken = REVIEWS.replace("weight: 80", "weight: 10")
    generation, push = pipeline.apply([Change.file("reviews.yaml", broken)])
    assert push.empty and generation is before
    (error,) = pipeline.errors
    assert error.file == "reviews.yaml" and "keeping its last good version" in error.message
