"""LocalWorkload services get addresses from `shoal up --netns`'s range, kept for the run."""

from __future__ import annotations

import pytest

from shoal.engine import Pipeline
from shoal.model.vips import LocalVips, VipRangeFull


def _workload(name: str) -> str:
    return f"""
apiVersion: shoal.dev/v1alpha1
kind: LocalWorkload
metadata: {{name: {name}, namespace: default}}
spec:
  ports: [{{number: 9080, name: http, protocol: HTTP}}]
  command: [python, -m, shoal.samples.service]
"""


def test_each_service_keeps_its_address_as_others_come_and_go() -> None:
    pipe = Pipeline("t", local_vips=LocalVips("10.96.0.0/16"))
    first = pipe.load({"a.yaml": _workload("reviews"), "b.yaml": _workload("ratings")}).snapshot
    got = {h: s.addresses for h, s in first.services.items()}
    assert set(got.values()) == {("10.96.0.1",), ("10.96.0.2",)}
    second = pipe.load({"b.yaml": _workload("ratings"), "c.yaml": _workload("details")}).snapshot
    ratings = "ratings.default.svc.cluster.local"
    assert second.services[ratings].addresses == got[ratings]
    assert second.services["details.default.svc.cluster.local"].addresses == ("10.96.0.3",)


def test_without_a_range_services_have_no_address() -> None:
    snap = Pipeline("t").load({"a.yaml": _workload("reviews")}).snapshot
    assert snap.services["reviews.default.svc.cluster.local"].addresses == ()


def test_a_full_range_is_an_error() -> None:
    vips = LocalVips("10.96.0.0/30")
    assert [vips.get("a"), vips.get("b")] == ["10.96.0.1", "10.96.0.2"]
    with pytest.raises(VipRangeFull):
        vips.get("c")
