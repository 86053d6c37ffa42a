"""Gateway credentials from files: `<config-dir>/secrets/<name>/tls.crt` and `tls.key` (and
`ca.crt`, the client CAs of a MUTUAL server).

A Gateway server's `tls.credentialName: NAME` names the directory `secrets/NAME/` beside the
YAML config, laid out like a Kubernetes `kubernetes.io/tls` Secret. The control plane reads
the files here (generation stays pure) and serves the certificate inline in the gateway's
listener. The files are watched with the config: replacing them rotates the certificate.
"""

from __future__ import annotations

import logging
from pathlib import Path

from shoal.model import Credential

log = logging.getLogger("shoal.sources")

SECRETS_DIR = "secrets"
CERT_FILE = "tls.crt"
KEY_FILE = "tls.key"
CA_FILE = "ca.crt"  # optional: the client CAs of a MUTUAL server


def is_secret_file(rel: Path) -> bool:
    """True for `secrets/<name>/tls.crt|tls.key|ca.crt` (relative to the config directory)."""
    parts = rel.parts
    return (
        len(parts) == 3 and parts[0] == SECRETS_DIR and parts[2] in (CERT_FILE, KEY_FILE, CA_FILE)
    )


def read_credentials(root: Path) -> dict[str, Credential]:
    """Every complete credential under `root/secrets`, by name."""
    found: dict[str, Credential] = {}
    base = root / SECRETS_DIR
    if not base.is_dir():
        return found
    for entry in sorted(base.iterdir()):
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        try:
            cert = (entry / CERT_FILE).read_text(encoding="utf-8")
            key = (entry / KEY_FILE).read_text(encoding="utf-8")
        except FileNotFoundError:
            log.error("secret %s: needs both %s and %s", entry.name, CERT_FILE, KEY_FILE)
            continue
        except (OSError, UnicodeDecodeError) as err:
            log.error("secret %s: cannot read: %s", entry.name, err)
            continue
        try:
            ca = (entry / CA_FILE).read_text(encoding="utf-8")
        except FileNotFoundError:
            ca = ""
        except (OSError, UnicodeDecodeError) as err:
            log.error("secret %s: cannot read %s: %s", entry.name, CA_FILE, err)
            ca = ""
        found[entry.name] = Credential(entry.name, cert, key, ca)
    return found
