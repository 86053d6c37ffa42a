"""The certificate authority: a root, an intermediate that signs, and the trust bundle.

Files in the CA directory (keys 0600, every write atomic):

- `root-cert.pem`, `root-key.pem`: the current root. Supply your own before the first
  start, or shoal generates one.
- `ca-cert.pem`, `ca-key.pem`: the intermediate that signs workload certificates
  (regenerated when it was not issued by the current root, or expires too soon).
- `trusted-roots.pem`: every root workloads trust: the current one, plus old ones during a
  rotation.

Root rotation: `rotate_root()` makes a new root and intermediate and keeps the old root in
`trusted-roots.pem`; workloads receive both roots with their next certificate, so certificates
from old and new chains verify everywhere. Once every workload has renewed (one certificate
lifetime), `retire_old_roots()` leaves only the current root. A running control plane notices
the files changing (`reload_if_changed`), so rotation needs no restart.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec

from shoal.ca import certs
from shoal.ca.files import write_atomic, write_secret
from shoal.ca.identity import CONTROL_PLANE, CONTROL_PLANE_DNS, Identity

log = logging.getLogger("shoal.ca")

ROOT_CERT = "root-cert.pem"
ROOT_KEY = "root-key.pem"
CA_CERT = "ca-cert.pem"
CA_KEY = "ca-key.pem"
ROOTS = "trusted-roots.pem"

DEFAULT_LIFETIME = dt.timedelta(hours=24)


@dataclass(frozen=True)
class IssuedCertificate:
    """PEM chain (leaf first, then the intermediate) and every trusted root."""

    chain: tuple[str, ...]
    roots: tuple[str, ...]
    not_after: dt.datetime

    @property
    def chain_pem(self) -> str:
        return "".join(self.chain)

    @property
    def roots_pem(self) -> str:
        return "".join(self.roots)


class CertificateAuthority:
    """Signs CSRs for SPIFFE identities with the intermediate of the current root."""

    def __init__(
        self,
        ca_dir: Path,
        *,
        default_lifetime: dt.timedelta = DEFAULT_LIFETIME,
        max_lifetime: dt.timedelta | None = None,
    ) -> None:
        self.dir = ca_dir
        self.default_lifetime = default_lifetime
        self.max_lifetime = max(max_lifetime or default_lifetime, default_lifetime)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._stamp: tuple[float, ...] = ()
        self._ensure()
        self._load()

    # ------------------------------------------------------------------ files
    def _path(self, name: str) -> Path:
        return self.dir / name

    def _read(self, name: str) -> bytes:
        return self._path(name).read_bytes()

    def _ensure(self) -> None:
        """Create what is missing: a root (unless supplied), its intermediate, the bundle."""
        if not self._path(ROOT_CERT).exists():
            key = certs.new_key()
            root = certs.make_root(key)
            write_secret(self._path(ROOT_KEY), certs.key_pem(key))
            write_atomic(self._path(ROOT_CERT), certs.cert_pem(root))
            log.info("generated root CA %s in %s", certs.fingerprint(root), self.dir)
        root = certs.load_certs(self._read(ROOT_CERT))[0]
        if not self._path(ROOTS).exists():
            write_atomic(self._path(ROOTS), certs.cert_pem(root))
        if not self._intermediate_ok(root):
            self._new_intermediate(root)

    def _intermediate_ok(self, root: x509.Certificate) -> bool:
        if not (self._path(CA_CERT).exists() and self._path(CA_KEY).exists()):
            return False
        cert = certs.load_certs(self._read(CA_CERT))[0]
        try:
            cert.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature):
            return False
        return cert.not_valid_after_utc > certs.now() + self.max_lifetime

    def _new_intermediate(self, root: x509.Certificate) -> None:
        root_key = certs.load_key(self._read(ROOT_KEY))
        key = certs.new_key()
        cert = certs.make_intermediate(key, root, root_key)
        write_secret(self._path(CA_KEY), certs.key_pem(key))
        write_atomic(self._path(CA_CERT), certs.cert_pem(cert))
        log.info("generated intermediate CA %s", certs.fingerprint(cert))

    def _stat(self) -> tuple[float, ...]:
        return tuple(self._path(n).stat().st_mtime_ns for n in (ROOT_CERT, CA_CERT, CA_KEY, ROOTS))

    def _load(self) -> None:
        self.root = certs.load_certs(self._read(ROOT_CERT))[0]
        self.signer = certs.load_certs(self._read(CA_CERT))[0]
        self._signer_key = certs.load_key(self._read(CA_KEY))
        self.roots = tuple(certs.load_certs(self._read(ROOTS)))
        self._stamp = self._stat()

    def reload_if_changed(self) -> bool:
        """Pick up files changed by `shoal ca rotate-root` (or by hand) since the last load."""
        try:
            if self._stat() == self._stamp:
                return False
            self._ensure()
            self._load()
        except (OSError, ValueError) as err:
            log.error("CA directory %s: %s; keeping the loaded CA", self.dir, err)
            return False
        log.info(
            "CA reloaded: root %s, %d trusted roots", certs.fingerprint(self.root), len(self.roots)
        )
        return True

    # ------------------------------------------------------------------ rotation
    def rotate_root(self) -> x509.Certificate:
        """A new root and intermediate; the old roots stay trusted until `retire_old_roots`."""
        old = self.roots
        key = certs.new_key()
        root = certs.make_root(key)
        write_secret(self._path(ROOT_KEY), certs.key_pem(key))
        write_atomic(self._path(ROOT_CERT), certs.cert_pem(root))
        bundle = [root, *(r for r in old if r != root)]
        write_atomic(self._path(ROOTS), b"".join(certs.cert_pem(c) for c in bundle))
        self._new_intermediate(root)
        self._load()
        log.info("root rotated to %s; %d roots trusted", certs.fingerprint(root), len(bundle))
        return root

    def retire_old_roots(self) -> None:
        """Trust only the current root (after every workload renewed under it)."""
        write_atomic(self._path(ROOTS), certs.cert_pem(self.root))
        self._load()

    # ------------------------------------------------------------------ signing
    @property
    def roots_pem(self) -> tuple[str, ...]:
        return tuple(certs.cert_pem(c).decode() for c in self.roots)

    def lifetime(self, requested_s: float | None) -> dt.timedelta:
        if not requested_s or requested_s <= 0:
            return self.default_lifetime
        return min(dt.timedelta(seconds=requested_s), self.max_lifetime)

    def _issued(self, cert: x509.Certificate) -> IssuedCertificate:
        return IssuedCertificate(
            chain=(certs.cert_pem(cert).decode(), certs.cert_pem(self.signer).decode()),
            roots=self.roots_pem,
            not_after=cert.not_valid_after_utc,
        )

    def sign(
        self, csr_pem: bytes, identity: Identity, validity_s: float | None = None
    ) -> IssuedCertificate:
        """Sign `csr_pem` for `identity`: its only SAN must be the identity's SPIFFE id.

        Raises `certs.CsrError` for a CSR naming anything else (or none, or several).
        """
        self.reload_if_changed()
        key, uris = certs.csr_public_key(csr_pem)
        if uris != [identity.spiffe_id]:
            raise certs.CsrError(
                f"CSR asks for {uris or 'no URI SAN'}; the caller may only get {identity.spiffe_id}"
            )
        cert = certs.leaf(
            key,
            uri=identity.spiffe_id,
            issuer=self.signer,
            issuer_key=self._signer_key,
            lifetime=self.lifetime(validity_s),
        )
        return self._issued(cert)

    def server_certificate(
        self, key: ec.EllipticCurvePrivateKey, *, lifetime: dt.timedelta = dt.timedelta(days=30)
    ) -> IssuedCertificate:
        """The control plane's own serving certificate (xDS and CA over TLS)."""
        cert = certs.leaf(
            key.public_key(),
            uri=CONTROL_PLANE.spiffe_id,
            issuer=self.signer,
            issuer_key=self._signer_key,
            lifetime=lifetime,
            dns=(CONTROL_PLANE_DNS, "localhost"),
            ips=("127.0.0.1",),
        )
        return self._issued(cert)
