"""The agent's SDS feeding a real Envoy: its certificate and roots, then rotation under load.

The CA (real TLS gRPC on 127.0.0.1), the agent's certificate manager and its SDS server run in
this process, so the test can compare the key Envoy serves with the one the agent made. The
Envoy has a static bootstrap: an mTLS listener whose certificate is the SDS secret `default`
and whose client validation uses `ROOTCA` (no xDS needed, so this does not depend on the
generator's mTLS). Clients open a new TLS connection per request (each handshake shows the
certificate of the moment) and keep one connection open throughout (it must survive every
rotation).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import http.client
import shutil
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from harness.adminhttp import get_json
from harness.envoy import EnvoyProcess
from harness.ports import free_port
from shoal.agent.certs import CertManager, new_key_and_csr
from shoal.agent.sds import SdsServer
from shoal.agent.securebootstrap import sds_cluster, sds_config
from shoal.ca import Identity
from shoal.ca.certs import key_pem
from shoal.controlplane.security import MeshSecurity
from shoal.xds.server import AdsServer

ME = Identity("default", "reviews")
CLIENT = Identity("default", "frontend")
TLS_CTX = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."


def _bootstrap(admin: int, port: int, sds_socket: str) -> dict[str, Any]:
    route = {
        "virtual_hosts": [
            {
                "name": "all",
                "domains": ["*"],
                "routes": [
                    {
                        "match": {"prefix": "/"},
                        "direct_response": {"status": 200, "body": {"inline_string": "ok"}},
                    }
                ],
            }
        ]
    }
    tls = {
        "require_client_certificate": True,
        "common_tls_context": {
            "tls_certificate_sds_secret_configs": [{"name": "default", "sds_config": sds_config()}],
            "validation_context_sds_secret_config": {"name": "ROOTCA", "sds_config": sds_config()},
        },
    }
    return {
        "node": {
            "id": "sidecar~127.0.0.1~reviews-0.default~default.svc.cluster.local",
            "cluster": "reviews",
        },
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "static_resources": {
            "clusters": [sds_cluster(sds_socket)],
            "listeners": [
                {
                    "name": "mtls",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                    "filter_chains": [
                        {
                            "transport_socket": {
                                "name": "envoy.transport_sockets.tls",
                                "typed_config": {"@type": TLS_CTX, **tls},
                            },
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": {
                                        "@type": HCM + "HttpConnectionManager",
                                        "stat_prefix": "in",
                                        "route_config": route,
                                        "http_filters": [
                                            {
                                                "name": "envoy.filters.http.router",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy."
                                                    "extensions.filters.http.router.v3.Router"
                                                },
                                            }
                                        ],
                                    },
                                }
                            ],
                        }
                    ],
                }
            ],
        },
    }


@dataclass
class Agent:
    security: MeshSecurity
    certs: CertManager
    sds: SdsServer
    envoy: EnvoyProcess
    port: int
    client_ctx: ssl.SSLContext
    stop: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # a Unix socket path must stay under ~107 bytes: not inside pytest's long tmp_path
    path = Path(tempfile.mkdtemp(prefix="shoal-sds-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def agent(tmp_path: Path, short_dir: Path) -> AsyncIterator[Agent]:
    security = MeshSecurity(tmp_path / "ca", cert_ttl_s=8, max_cert_ttl_s=600)
    ads = AdsServer("boot")
    security.install(ads)
    xds = await ads.start("127.0.0.1", 0)
    token_file = tmp_path / "token"
    token_file.write_text(security.tokens.issue(ME))
    sds = SdsServer(str(short_dir / "sds.sock"))
    certs = CertManager(
        ME,
        ca_address=f"127.0.0.1:{xds}",
        trust_pem=security.roots_file.read_text(),
        token_file=token_file,
        on_update=lambda c: sds.update(c.chain_pem, c.key_pem, c.roots_pem),
    )
    run: Agent | None = None
    renew: asyncio.Task[None] | None = None
    try:
        started = time.perf_counter()
        assert await certs.first(asyncio.Event()) is not None
        print(f"first certificate in {(time.perf_counter() - started) * 1000:.0f} ms")
        await sds.start()
        # a client certificate for the callers (long-lived, from the same CA)
        ckey, csr = new_key_and_csr(CLIENT)
        issued = security.ca.sign(csr.encode(), CLIENT, 600)
        (tmp_path / "client.pem").write_text(issued.chain_pem)
        (tmp_path / "client.key").write_bytes(key_pem(ckey))
        ctx = ssl.create_default_context(cafile=str(security.roots_file))
        ctx.check_hostname = False  # the SAN is a SPIFFE URI, checked below
        ctx.load_cert_chain(tmp_path / "client.pem", tmp_path / "client.key")
        port = free_port()
        boot = _bootstrap(free_port(), port, sds.socket_path)
        envoy = EnvoyProcess(boot, tmp_path, name="envoy")
        run = Agent(security, certs, sds, envoy, port, ctx)
        await asyncio.to_thread(envoy.start)
        renew = asyncio.create_task(certs.run(run.stop))
        yield run
    finally:
        if run is not None:
            run.stop.set()
            await asyncio.to_thread(run.envoy.stop)
        if renew is not None:
            await renew
        await sds.stop()
        await ads.stop(0)


def _secrets(envoy: EnvoyProcess) -> dict[str, dict[str, Any]]:
    dump = get_json(envoy.admin_url + "/config_dump?resource=dynamic_active_secrets")
    return {s["name"]: s["secret"] for s in dump.get("configs", [])}


def _san(cert: x509.Certificate) -> list[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(g.value) for g in ext]


async def test_envoy_holds_the_agents_certificate_and_roots(agent: Agent) -> None:
    secrets = await asyncio.to_thread(_secrets, agent.envoy)
    assert set(secrets) == {"default", "ROOTCA"}
    tls = secrets["default"]["tls_certificate"]
    served = x509.load_pem_x509_certificates(
        base64.b64decode(tls["certificate_chain"]["inline_bytes"])
    )
    assert _san(served[0]) == [ME.spiffe_id]
    assert tls["private_key"]["inline_bytes"] != base64.b64encode(b"x").decode()
    # the key is the agent's: the served certificate's public key is the one it generated
    assert agent.certs.current is not None
    mine = serialization.load_pem_private_key(agent.certs.current.key_pem.encode(), None)
    assert served[0].public_key() == mine.public_key()
    assert agent.certs.current.key_pem not in str(secrets)  # Envoy's dump redacts the key
    roots = base64.b64decode(secrets["ROOTCA"]["validation_context"]["trusted_ca"]["inline_bytes"])
    assert x509.load_pem_x509_certificates(roots) == list(agent.security.ca.roots)
    # and a caller sees it over mTLS
    serial, san = await asyncio.to_thread(_handshake, agent)
    assert san == [ME.spiffe_id] and serial == agent.certs.current.serial


def _handshake(agent: Agent) -> tuple[int, list[str]]:
    with (
        socket.create_connection(("127.0.0.1", agent.port), timeout=3) as raw,
        agent.client_ctx.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = tls.recv(100)
        assert reply.startswith(b"HTTP/1.1 200"), reply
    cert = x509.load_der_x509_certificate(der)
    return cert.serial_number, _san(cert)


async def test_certificates_rotate_under_load_without_a_failed_request(agent: Agent) -> None:
    stop = threading.Event()
    serials: set[int] = set()
    failures: list[str] = []
    counts = {"new": 0, "kept": 0}

    def new_connections() -> None:
        while not stop.is_set():
            try:
                serials.add(_handshake(agent)[0])
                counts["new"] += 1
            except (OSError, AssertionError) as err:
                failures.append(f"new connection: {err!r}")
            time.sleep(0.02)

    def one_connection() -> None:
        conn = http.client.HTTPSConnection("127.0.0.1", agent.port, context=agent.client_ctx)
        while not stop.is_set():
            try:
                conn.request("GET", "/")
                resp = conn.getresponse()
                resp.read()
                counts["kept"] += 1
                if resp.status != 200:
                    failures.append(f"kept connection: {resp.status}")
            except (OSError, http.client.HTTPException) as err:
                failures.append(f"kept connection: {err!r}")
            time.sleep(0.02)
        conn.close()

    started = dt.datetime.now(dt.UTC)
    loaders = [asyncio.to_thread(new_connections), asyncio.to_thread(one_connection)]
    running = asyncio.gather(*loaders)
    await asyncio.sleep(18)  # 8-second certificates, renewed at 4 s ± 0.8 s
    stop.set()
    await running
    print(
        f"{agent.certs.renewals} renewals, {len(serials)} certificates seen by callers, "
        f"{counts} requests since {started:%H:%M:%S}, {agent.sds.pushes} SDS pushes"
    )
    assert not failures, failures[:5]
    assert agent.certs.renewals >= 3
    assert len(serials) >= 3  # callers saw each new certificate without Envoy restarting
    assert counts["kept"] > 100 and counts["new"] > 100
    assert agent.envoy.proc is not None and agent.envoy.proc.poll() is None
