"""Property: for any pod hypothesis invents, the injection webhook's JSON Patch applied to the
pod gives exactly the injected pod, keeps everything the pod had, and injecting again
changes nothing."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal.kube.inject import PROXY_CONTAINER, inject_pod, injection_patch

_name = st.from_regex(r"[a-z]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
# label keys with prefixes and '/' (patch paths escape them as ~1) and '~' never allowed
_key = st.one_of(_name, st.builds(lambda p, n: f"{p}.io/{n}", _name, _name))
_labels = st.dictionaries(_key, _name, max_size=4)
_env = st.lists(st.fixed_dictionaries({"name": _name.map(str.upper), "value": _name}), max_size=3)
_container = st.fixed_dictionaries(
    {
        "name": _name,
        "image": _name,
        "env": _env,
        "ports": st.lists(
            st.fixed_dictionaries({"containerPort": st.integers(1, 65535)}), max_size=2
        ),
    }
)


@st.composite
def pods(draw: st.DrawFn) -> dict[str, Any]:
    containers = draw(st.lists(_container, min_size=1, max_size=3, unique_by=lambda c: c["name"]))
    meta: dict[str, Any] = {"namespace": draw(_name), "labels": draw(_labels)}
    if draw(st.booleans()):
        meta["annotations"] = draw(_labels)
    if draw(st.booleans()):
        meta["name"] = draw(_name)
    else:
        meta["generateName"] = draw(_name) + "-"
    spec: dict[str, Any] = {"containers": containers}
    if draw(st.booleans()):
        spec["serviceAccountName"] = draw(_name)
    if draw(st.booleans()):
        spec["volumes"] = [{"name": draw(_name), "emptyDir": {}}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pods())
def test_patch_applied_is_the_injected_pod(pod: dict[str, Any]) -> None:
    original = copy.deepcopy(pod)
    result = injection_patch(pod)
    assert pod == original  # the input is not touched
    patched = jsonpatch.apply_patch(copy.deepcopy(pod), result.operations)
    assert patched == inject_pod(pod).pod

    # nothing the pod had is lost: its labels, annotations, containers and volumes remain
    meta = patched["metadata"]
    assert original["metadata"]["labels"].items() <= meta["labels"].items()
    assert (original["metadata"].get("annotations") or {}).keys() <= meta["annotations"].keys()
    names = [c["name"] for c in patched["spec"]["containers"]]
    # the agent first, holding the application until it is ready
    assert names == [PROXY_CONTAINER, *(c["name"] for c in original["spec"]["containers"])]
    volumes = {v["name"] for v in patched["spec"]["volumes"]}
    assert {v["name"] for v in original["spec"].get("volumes") or ()} <= volumes
    assert patched["spec"]["serviceAccountName"] == original["spec"].get(
        "serviceAccountName", "default"
    )

    # injecting the injected pod is a no-op
    assert injection_patch(patched).operations == []
