"""The harness checked against Envoy alone (static config, no control plane).

If this fails, the e2e failures next to it are about the harness or the machine, not shoal.
"""

from __future__ import annotations

from collections.abc import Callable
from string import Template

import pytest

from harness.backend import Backend
from harness.envoy import EnvoyProcess
from harness.load import SteadyLoad, fire
from harness.ports import free_port

pytestmark = pytest.mark.envoy

STATIC = Template("""\
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: $admin } }
static_resources:
  listeners:
  - name: outbound
    address: { socket_address: { address: 127.0.0.1, port_value: $listen } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: outbound
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          route_config:
            virtual_hosts:
            - name: svc
              domains: [svc]
              routes:
              - match: { prefix: / }
                route:
                  weighted_clusters:
                    clusters: [{ name: a, weight: 75 }, { name: b, weight: 25 }]
  clusters:
  - name: a
    type: STATIC
    load_assignment:
      cluster_name: a
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $a } } } }] }]
  - name: b
    type: STATIC
    load_assignment:
      cluster_name: b
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $b } } } }] }]
""")  # noqa: E501 (Envoy type URLs are long)


def test_static_envoy_backends_and_load(
    backend_factory: Callable[[str], Backend],
    envoy_factory: Callable[..., EnvoyProcess],
) -> None:
    a, b = backend_factory("a"), backend_factory("b")
    listen = free_port()
    envoy = envoy_factory(
        STATIC.substitute(admin=free_port(), listen=listen, a=a.port, b=b.port), name="static"
    )

    counts = fire(listen, "svc", 400)
    assert counts["status:200"] == 400, counts
    assert 60 <= 100 * counts["a"] / 400 <= 90, counts
    assert fire(listen, "unknown-host", 3) == {"status:404": 3}

    with SteadyLoad(listen, "svc", rps=150) as load:
        load_ok = envoy.wait_for(lambda _: load.snapshot().total >= 100, 5, what="100 requests")
    result = load.stop()
    assert load_ok and result.failures == [], result.summary()
    assert a.requests + b.requests == 400 + result.total
    assert set(envoy.clusters()) == {"a", "b"}
    assert envoy.stats()["cluster.a.upstream_rq_200"] == counts["a"] + result.by_backend["a"]
