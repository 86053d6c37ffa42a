"""What `shoal up --netns` writes into pods' hosts files, and a bad capture annotation refused
at load time with its file and line (runtime/pods.py, api/validate.py)."""

from __future__ import annotations

from shoal.engine import Pipeline
from shoal.model.vips import LocalVips
from shoal.runtime.pods import hosts_for

MESH = """
apiVersion: shoal.dev/v1alpha1
kind: LocalWorkload
metadata: {name: reviews, namespace: default}
spec:
  ports: [{number: 9080, name: http, protocol: HTTP}]
  command: [python, -m, shoal.samples.service]
---
apiVersion: shoal.dev/v1alpha1
kind: LocalWorkload
metadata: {name: ratings, namespace: shop}
spec:
  ports: [{number: 80, name: http, protocol: HTTP}]
  command: [python, -m, shoal.samples.service]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: default}
spec:
  hosts: [db.example.com]
  addresses: [192.168.5.5]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  endpoints: [{address: 192.168.5.5}]
"""

BAD = """
apiVersion: shoal.dev/v1alpha1
kind: LocalWorkload
metadata:
  name: client
  namespace: default
  annotations:
    traffic.sidecar.istio.io/excludeOutboundPorts: "99999"
spec:
  ports: [{number: 80, name: http, protocol: HTTP}]
  command: [python, -m, shoal.samples.service]
"""


def test_hosts_name_services_as_a_pod_of_the_namespace_may() -> None:
    pipe = Pipeline("t", local_vips=LocalVips("10.96.0.0/16"))
    snap = pipe.load({"mesh.yaml": MESH}).snapshot
    assert not pipe.errors, pipe.errors
    # VIPs in build order (namespace, then name), kept for the run
    assert hosts_for(snap, "default") == {
        "reviews reviews.default reviews.default.svc reviews.default.svc.cluster.local": (
            "10.96.0.1"
        ),
        "ratings.shop ratings.shop.svc ratings.shop.svc.cluster.local": "10.96.0.2",
        "db.example.com": "192.168.5.5",
    }
    # from the other namespace, reviews has no short name and ratings has
    shop = hosts_for(snap, "shop")
    assert any(k.startswith("ratings ratings.shop ") for k in shop), shop
    assert not any(k.startswith("reviews ") for k in shop), shop


def test_a_bad_capture_annotation_is_refused_with_its_file_and_line() -> None:
    pipe = Pipeline("t")
    snap = pipe.load({"client.yaml": BAD}).snapshot
    assert [str(e) for e in pipe.errors] and "client.default.svc.cluster.local" not in snap.services
    err = pipe.errors[0]
    assert err.file == "client.yaml" and err.line > 1, err
    assert err.field == "metadata.annotations", err
    assert "excludeOutboundPorts: '99999' is not a port" in err.message, err
