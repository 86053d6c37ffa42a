"""The xDS/CA port's serving certificate (shoal.ca.transport): a real gRPC server over TLS on
127.0.0.1, handshakes made by Python's ssl client, the certificate each one meets read back."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509

from shoal.ca.authority import ROOTS, CertificateAuthority
from shoal.ca.identity import CONTROL_PLANE_DNS
from shoal.ca.transport import ServingCertificate


async def _served(port: int, roots: Path) -> x509.Certificate:
    """The certificate a new TLS handshake with the server meets (verified against `roots`)."""
    context = ssl.create_default_context(cafile=str(roots))
    context.set_alpn_protocols(["h2"])
    _, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname=CONTROL_PLANE_DNS
    )
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    return x509.load_der_x509_certificate(der)


class Clock:
    """The time the serving certificate sees: moved on by the test, not slept through."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def served(
    tmp_path: Path, clock: Clock
) -> AsyncIterator[tuple[ServingCertificate, int, Path]]:
    ca = CertificateAuthority(tmp_path / "ca")
    serving = ServingCertificate(ca, lifetime=dt.timedelta(hours=1), clock=clock)
    server = grpc.aio.server()
    port = server.add_secure_port("127.0.0.1:0", serving.credentials)
    await server.start()
    yield serving, port, tmp_path / "ca" / ROOTS
    await server.stop(None)


async def test_new_handshakes_get_a_renewed_certificate_after_half_life(
    served: tuple[ServingCertificate, int, Path], clock: Clock
) -> None:
    serving, port, roots = served
    first = await _served(port, roots)
    assert first.serial_number == serving.serial
    assert (await _served(port, roots)).serial_number == first.serial_number  # young: kept
    assert serving.renewals == 0

    clock.now += 29 * 60  # not yet half of its hour
    assert (await _served(port, roots)).serial_number == first.serial_number
    clock.now += 2 * 60  # past it
    renewed = await _served(port, roots)
    assert renewed.serial_number != first.serial_number
    assert renewed.not_valid_after_utc >= first.not_valid_after_utc
    assert (serving.renewals, serving.serial) == (1, renewed.serial_number)
    assert serving.describe()["renewals"] == 1
    # it names the control plane, as the first one did
    san = renewed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert CONTROL_PLANE_DNS in san.get_values_for_type(x509.DNSName)


async def test_a_failed_renewal_keeps_serving_the_current_certificate(
    served: tuple[ServingCertificate, int, Path], clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    serving, port, roots = served
    first = await _served(port, roots)

    def broken(*args: object, **kwargs: object) -> object:
        raise OSError("CA files unreadable")

    monkeypatch.setattr(serving.ca, "server_certificate", broken)
    clock.now += 31 * 60
    assert (await _served(port, roots)).serial_number == first.serial_number
    assert serving.failures >= 1 and serving.renewals == 0


async def test_a_rotated_root_renews_it_at_the_next_handshake(
    served: tuple[ServingCertificate, int, Path], tmp_path: Path
) -> None:
    """`shoal ca rotate-root` in another process: the CA directory changes on disk."""
    serving, port, roots = served
    first = await _served(port, roots)
    other = CertificateAuthority(tmp_path / "ca")
    other.rotate_root()
    renewed = await _served(port, roots)  # the bundle trusts old and new roots
    assert renewed.issuer == other.signer.subject != first.issuer
    assert renewed.serial_number != first.serial_number and serving.renewals == 1


def test_the_renewal_point_must_be_inside_the_lifetime(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="renew_fraction"):
        ServingCertificate(CertificateAuthority(tmp_path / "ca"), renew_fraction=1.0)
