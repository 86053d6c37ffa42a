"""Building X.509 certificates: roots, intermediates, workload and server certificates.

Every key here is EC P-256 (ECDSA with SHA-256): small, fast to generate and to verify, and
what Envoy and gRPC handle best. Workload CSRs may also use RSA (2048 bits or more).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shoal.ca.identity import TRUST_DOMAIN

CaKey = ec.EllipticCurvePrivateKey
# clocks of peers may lag a little behind ours
BACKDATE = dt.timedelta(seconds=5)


class CsrError(ValueError):
    """A CSR the CA will not sign (bad signature, weak key, wrong SAN)."""


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_key() -> CaKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: CaKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_key(pem: bytes) -> CaKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("CA keys must be EC keys")
    return key


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_certs(pem: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem) if pem.strip() else []


def _ca_cert(
    subject: str, key: CaKey, issuer: x509.Certificate | None, issuer_key: CaKey, days: int
) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, TRUST_DOMAIN),
            x509.NameAttribute(NameOID.COMMON_NAME, subject),
        ]
    )
    start = now() - BACKDATE
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer is not None else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _key_id(key: CaKey) -> str:
    return x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest.hex()[:12]


def make_root(key: CaKey, *, days: int = 3650) -> x509.Certificate:
    # a unique subject: old and new roots sit side by side in the bundle during a rotation
    return _ca_cert(f"shoal root CA {_key_id(key)}", key, None, key, days)


def make_intermediate(
    key: CaKey, root: x509.Certificate, root_key: CaKey, *, days: int = 365
) -> x509.Certificate:
    return _ca_cert(f"shoal intermediate CA {_key_id(key)}", key, root, root_key, days)


def leaf(
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    *,
    uri: str,
    issuer: x509.Certificate,
    issuer_key: CaKey,
    lifetime: dt.timedelta,
    dns: Sequence[str] = (),
    ips: Sequence[str] = (),
) -> x509.Certificate:
    """A workload (or server) certificate: empty subject, the identity in a critical SAN."""
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(uri)]
    sans += [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    start = now()
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - BACKDATE)
        .not_valid_after(start + lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        # RFC 5280 4.2.1.6: with an empty subject the SAN extension must be critical
        .add_extension(x509.SubjectAlternativeName(sans), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )


PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


def csr_public_key(csr_pem: bytes) -> tuple[PublicKey, list[str]]:
    """Check a CSR (signature, key type) and return its public key and its URI SANs."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as err:
        raise CsrError(f"not a PEM CSR: {err}") from None
    if not csr.is_signature_valid:
        raise CsrError("CSR signature does not verify")
    key = csr.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise CsrError(f"EC key on curve {key.curve.name}; only P-256 is accepted")
    elif isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise CsrError(f"RSA key of {key.key_size} bits; at least 2048 are required")
    else:
        raise CsrError(f"{type(key).__name__} keys are not accepted (EC P-256 or RSA)")
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        uris = []
    return key, uris


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()[:16]
