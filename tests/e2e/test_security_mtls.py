"""Automatic mTLS and PeerAuthentication through real Envoys with test SDS certificates.

Two secure sidecars (each with a certificate for its SPIFFE id from harness/sds.py): the
caller's outbound cluster speaks mTLS to the `reviews` sidecar because its endpoint is
labelled `security.istio.io/tlsMode: istio`, and the app sees the caller's identity in
`x-forwarded-client-cert`. STRICT refuses plaintext at the connection; PERMISSIVE (the
default) accepts both.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.backend import Backend
from harness.configdir import ConfigDir
from harness.controlplane import wait_synced
from harness.sds import spiffe
from harness.secmesh import (
    SecureMesh,
    backend_headers,
    call,
    plaintext_refused,
    service_entry,
)
from harness.wait import wait_until

pytestmark = pytest.mark.envoy

STRICT = """apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: reviews, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  mtls: {mode: STRICT}
"""


def test_sidecars_talk_mtls_and_the_app_sees_the_callers_spiffe_id(
    secmesh: SecureMesh, backend_factory: Callable[[str], Backend], config_dir: ConfigDir
) -> None:
    app = backend_factory("reviews")
    server = secmesh.sidecar("reviews", app_port=app.port)
    client = secmesh.sidecar("productpage")
    config_dir.write("reviews-se.yaml", service_entry(server.inbound))
    wait_synced(secmesh.cp, 2, 15)

    def answered() -> bool:
        status, headers, _ = call(client.outbound)
        return status == 200 and headers.get("x-backend") == "reviews"

    wait_until(answered, 10, interval=0.2, what="a call through both sidecars",
               describe=client.envoy.describe)  # fmt: skip
    status, _, body = call(client.outbound)
    assert status == 200
    xfcc = backend_headers(body).get("x-forwarded-client-cert", "")
    assert f"URI={spiffe('productpage')}" in xfcc, xfcc
    # the connection really was TLS: the server's TLS chain counted a handshake
    assert server.envoy.stat(f"listener.127.0.0.1_{server.inbound}.ssl.handshake") >= 1
    # a plaintext caller under PERMISSIVE (the default) is served, without an identity
    status, _, body = call(server.inbound)
    assert status == 200
    assert "x-forwarded-client-cert" not in backend_headers(body)
    # and it cannot forge one: SANITIZE_SET drops what a caller sends
    status, _, body = call(server.inbound, headers={"x-forwarded-client-cert": "URI=spiffe://x"})
    assert "x-forwarded-client-cert" not in backend_headers(body)


def test_strict_refuses_plaintext_at_the_connection_permissive_accepts_both(
    secmesh: SecureMesh, backend_factory: Callable[[str], Backend], config_dir: ConfigDir
) -> None:
    app = backend_factory("reviews")
    server = secmesh.sidecar("reviews", app_port=app.port)
    client = secmesh.sidecar("productpage")
    config_dir.write("reviews-se.yaml", service_entry(server.inbound))
    wait_synced(secmesh.cp, 2, 15)
    wait_until(lambda: call(client.outbound)[1].get("x-backend") == "reviews", 10,
               interval=0.2, what="mTLS call")  # fmt: skip
    # baseline (PERMISSIVE): plaintext is answered
    assert not plaintext_refused(server.inbound)

    config_dir.write("strict.yaml", STRICT)
    wait_until(lambda: plaintext_refused(server.inbound), 10, interval=0.2,
               what="STRICT to refuse plaintext", describe=server.envoy.describe)  # fmt: skip
    # mTLS from the mesh peer still works
    assert call(client.outbound)[0] == 200

    config_dir.write("strict.yaml", STRICT.replace("STRICT", "PERMISSIVE"))
    wait_until(lambda: not plaintext_refused(server.inbound), 10, interval=0.2,
               what="PERMISSIVE to accept plaintext again")  # fmt: skip
    assert call(client.outbound)[0] == 200
