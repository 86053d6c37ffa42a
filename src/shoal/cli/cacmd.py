"""`shoal ca`: look after the CA directory (root rotation) of a secure control plane."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from shoal.ca import CertificateAuthority
from shoal.ca.certs import fingerprint


def _describe(ca: CertificateAuthority) -> str:
    return json.dumps(
        {"root": fingerprint(ca.root), "trusted_roots": [fingerprint(r) for r in ca.roots]}
    )


def _run(args: argparse.Namespace) -> int:
    ca = CertificateAuthority(Path(args.ca_dir))
    if args.action == "rotate-root":
        ca.rotate_root()
    elif args.action == "retire-old-roots":
        ca.retire_old_roots()
    print(_describe(ca))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ca", help="show the CA, rotate its root, retire old roots")
    p.add_argument("action", choices=["show", "rotate-root", "retire-old-roots"])
    p.add_argument("--ca-dir", required=True, help="the control plane's --ca-dir")
    p.set_defaults(func=_run)
