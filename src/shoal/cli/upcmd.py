"""`shoal up DIR`: a whole mesh on this machine from a folder of YAML (see shoal.runtime)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from shoal.cli.limits import add_max_file_bytes, add_namespace
from shoal.runtime.pods import (
    DEFAULT_STATE_DIR,
    DEFAULT_SUBNET,
    DEFAULT_VIPS,
    PodsUnavailable,
    check_host,
    cleanup,
)
from shoal.runtime.up import UpSettings, run_up


def _run(args: argparse.Namespace) -> int:
    if args.cleanup:
        removed = cleanup(Path(args.state_dir))
        print(f"shoal up --cleanup: removed {', '.join(removed) or 'nothing'}")
        return 0
    if args.dir is None:
        print("shoal up: DIR is required (or --cleanup)", file=sys.stderr)
        return 2
    if args.netns:
        try:
            check_host()
        except PodsUnavailable as err:
            print(f"shoal up: {err}", file=sys.stderr)
            return 2
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
        netns=args.netns,
        state_dir=Path(args.state_dir),
        pod_subnet=args.pod_subnet,
        vip_range=args.service_cidr,
    )
    asyncio.run(run_up(settings))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("up", help="run the control plane, workloads and sidecars from DIR")
    p.add_argument("dir", nargs="?", help="folder with LocalWorkload and Istio YAML")
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
    pods = p.add_argument_group("pods (--netns: needs root, iproute2, iptables, setpriv)")
    pods.add_argument(
        "--netns",
        action="store_true",
        help="each replica in its own network namespace with transparent capture (iptables "
        "into its sidecar's 15001/15006); apps call http://SERVICE:PORT/ with no proxy setting",
    )
    pods.add_argument(
        "--pod-subnet",
        default=DEFAULT_SUBNET,
        help="first three octets of the pods' /24 (the host is .1)",
    )
    pods.add_argument(
        "--service-cidr", default=DEFAULT_VIPS, help="where services' virtual IPs come from"
    )
    pods.add_argument(
        "--state-dir",
        default=str(DEFAULT_STATE_DIR),
        help="where each run records its namespaces, links and bridge",
    )
    pods.add_argument(
        "--cleanup",
        action="store_true",
        help="remove what killed --netns runs left (namespaces, veths, bridges) and exit",
    )
    p.set_defaults(func=_run)
