"""The CA: SAN, lifetime, chain to the root, key types, files, root rotation bundle."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shoal.ca import CertificateAuthority, Identity, TokenError, TokenIssuer
from shoal.ca.authority import CA_KEY, ROOT_KEY, ROOTS
from shoal.ca.certs import CsrError

REVIEWS = Identity("default", "reviews")


def csr(
    uris: list[str], key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None
) -> bytes:
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    if uris:
        san = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in uris])
        builder = builder.add_extension(san, critical=True)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def verify_chain(chain: tuple[str, ...], roots: tuple[str, ...]) -> x509.Certificate:
    leaf, inter = (x509.load_pem_x509_certificate(c.encode()) for c in chain)
    inter_root = [
        r
        for r in (x509.load_pem_x509_certificate(p.encode()) for p in roots)
        if r.subject == inter.issuer
    ]
    assert inter_root, "intermediate's issuer is not among the roots"
    leaf.verify_directly_issued_by(inter)
    inter.verify_directly_issued_by(inter_root[0])
    return leaf


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority(tmp_path / "ca")


def test_certificate_has_exactly_the_spiffe_id_and_chains_to_the_root(
    ca: CertificateAuthority,
) -> None:
    issued = ca.sign(csr([REVIEWS.spiffe_id]), REVIEWS)
    leaf = verify_chain(issued.chain, issued.roots)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(g.value) for g in san] == ["spiffe://cluster.local/ns/default/sa/reviews"]
    life = leaf.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=23, minutes=59) < life <= dt.timedelta(hours=24)
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_lifetime_is_configurable_and_capped(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path, default_lifetime=dt.timedelta(minutes=1))
    short = x509.load_pem_x509_certificate(
        ca.sign(csr([REVIEWS.spiffe_id]), REVIEWS, 10).chain[0].encode()
    )
    life = short.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(seconds=8) < life <= dt.timedelta(seconds=10)
    capped = ca.sign(csr([REVIEWS.spiffe_id]), REVIEWS, 3600)
    assert capped.not_after - dt.datetime.now(dt.UTC) <= dt.timedelta(minutes=1)


def test_rsa_csr_is_signed_weak_keys_are_not(ca: CertificateAuthority) -> None:
    ca.sign(csr([REVIEWS.spiffe_id], rsa.generate_private_key(65537, 2048)), REVIEWS)
    with pytest.raises(CsrError, match="P-256"):
        ca.sign(csr([REVIEWS.spiffe_id], ec.generate_private_key(ec.SECP384R1())), REVIEWS)


@pytest.mark.parametrize(
    "uris",
    [
        ["spiffe://cluster.local/ns/default/sa/ratings"],
        [],
        ["spiffe://cluster.local/ns/default/sa/reviews", "spiffe://cluster.local/ns/default/sa/x"],
    ],
)
def test_csr_for_another_identity_is_refused(ca: CertificateAuthority, uris: list[str]) -> None:
    with pytest.raises(CsrError, match="may only get"):
        ca.sign(csr(uris), REVIEWS)


def test_files_are_private_and_reused(tmp_path: Path) -> None:
    first = CertificateAuthority(tmp_path)
    for name in (ROOT_KEY, CA_KEY):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    again = CertificateAuthority(tmp_path)
    assert again.root == first.root and again.signer == first.signer


def test_supplied_root_is_used(tmp_path: Path) -> None:
    mine = CertificateAuthority(tmp_path / "elsewhere")
    target = tmp_path / "ca"
    target.mkdir()
    for name in ("root-cert.pem", "root-key.pem"):
        (target / name).write_bytes((mine.dir / name).read_bytes())
    ca = CertificateAuthority(target)
    assert ca.root == mine.root
    verify_chain(ca.sign(csr([REVIEWS.spiffe_id]), REVIEWS).chain, mine.roots_pem)


def test_root_rotation_keeps_old_and_new_trusted_until_retired(ca: CertificateAuthority) -> None:
    before = ca.sign(csr([REVIEWS.spiffe_id]), REVIEWS)
    old_root = ca.root
    ca.rotate_root()
    after = ca.sign(csr([REVIEWS.spiffe_id]), REVIEWS)
    assert ca.root != old_root
    assert len(after.roots) == 2  # the overlap: both roots in the bundle
    verify_chain(before.chain, after.roots)  # old certificates still verify...
    verify_chain(after.chain, after.roots)  # ...and so do new ones
    ca.retire_old_roots()
    assert ca.roots == (ca.root,)
    with pytest.raises(AssertionError):
        verify_chain(before.chain, ca.roots_pem)


def test_running_ca_picks_up_a_rotation_done_by_another_process(tmp_path: Path) -> None:
    running = CertificateAuthority(tmp_path)
    CertificateAuthority(tmp_path).rotate_root()
    issued = running.sign(csr([REVIEWS.spiffe_id]), REVIEWS)
    assert len(issued.roots) == 2 and (tmp_path / ROOTS).read_text().count("BEGIN") == 2


def test_tokens_bind_an_identity(tmp_path: Path) -> None:
    tokens = TokenIssuer.in_dir(tmp_path)
    token = tokens.issue(REVIEWS)
    assert tokens.verify_header(f"Bearer {token}") == REVIEWS
    assert stat.S_IMODE((tmp_path / "token-key").stat().st_mode) == 0o600
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for bad in (None, token, f"Bearer {forged}", f"Bearer {tokens.issue(REVIEWS, -1)}"):
        with pytest.raises(TokenError) as err:
            tokens.verify_header(bad)
        assert token not in str(err.value)
    other = TokenIssuer(b"x" * 32)
    with pytest.raises(TokenError):
        other.verify(token)
