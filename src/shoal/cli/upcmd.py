"""`shoal up DIR`: a whole mesh on this machine from a folder of YAML (see shoal.runtime)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from shoal.cli.limits import add_max_file_bytes, add_namespace
from shoal.runtime.up import UpSettings, run_up


def _run(args: argparse.Namespace) -> int:
    config_dir = Path(args.dir).resolve()
    if not config_dir.is_dir():
        print(f"shoal up: {config_dir}: not a directory", file=sys.stderr)
        return 2
    settings = UpSettings(
        config_dir=config_dir,
        xds_port=args.xds_port,
        admin_port=args.admin_port,
        live_status=not args.no_status,
        secure=args.secure,
        ca_dir=Path(args.ca_dir).resolve() if args.ca_dir else None,
        cert_ttl_s=args.cert_ttl,
        max_file_bytes=args.max_file_bytes,
        namespace=args.namespace,
    )
    asyncio.run(run_up(settings))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("up", help="run the control plane, workloads and sidecars from DIR")
    p.add_argument("dir", help="folder with LocalWorkload and Istio YAML")
    p.add_argument("--xds-port", type=int, default=15010)
    p.add_argument("--admin-port", type=int, default=15014)
    p.add_argument("--no-status", action="store_true", help="no live table, log lines only")
    add_max_file_bytes(p)
    add_namespace(p)
    p.add_argument(
        "--secure",
        action="store_true",
        help="workload certificates, mTLS between sidecars, TLS and tokens to the control plane",
    )
    p.add_argument("--ca-dir", help="CA files to use or create (default: a temporary CA)")
    p.add_argument(
        "--cert-ttl", type=float, default=86400, help="workload certificate lifetime, seconds"
    )
    p.set_defaults(func=_run)
