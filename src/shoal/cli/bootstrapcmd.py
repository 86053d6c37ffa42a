"""`shoal bootstrap grpc`: write the xDS bootstrap of a proxyless gRPC client.

    shoal bootstrap grpc --workload reviews-client --namespace default \\
        --control-plane 127.0.0.1:15010 -o /etc/shoal/grpc-bootstrap.json
    GRPC_XDS_BOOTSTRAP=/etc/shoal/grpc-bootstrap.json python app.py   # dials xds:///...

See shoal.agent.grpcbootstrap for what the file holds.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from shoal.agent.grpcbootstrap import GrpcClientIdentity, grpc_bootstrap_json


def _labels(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise ValueError(f"--label {value!r} must be KEY=VALUE")
        out[key] = val
    return out


def _write(path: Path, text: str) -> None:
    """Atomically: a client starting meanwhile reads the old file or the new, never half."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _run(args: argparse.Namespace) -> int:
    try:
        identity = GrpcClientIdentity(
            workload=args.workload,
            namespace=args.namespace,
            pod=args.pod or "",
            labels=_labels(args.label),
            service_account=args.service_account,
            ip=args.ip,
            cert_dir=str(Path(args.cert_dir).resolve()) if args.cert_dir else "",
        )
        text = grpc_bootstrap_json(identity, args.control_plane)
    except ValueError as err:
        print(f"shoal bootstrap grpc: {err}", file=sys.stderr)
        return 2
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        _write(Path(args.output), text)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bootstrap", help="write the xDS bootstrap of a proxyless client")
    kinds = p.add_subparsers(dest="kind", required=True)
    g = kinds.add_parser("grpc", help="for a gRPC client dialing xds:/// targets")
    g.add_argument("--workload", required=True, help="the client's workload name")
    g.add_argument("--namespace", default="default")
    g.add_argument("--control-plane", required=True, help="HOST:PORT of shoal's plaintext xDS")
    g.add_argument("--pod", help="the instance name (default: the workload name)")
    g.add_argument("--label", action="append", default=[], help="KEY=VALUE (repeatable)")
    g.add_argument("--service-account", default="default")
    g.add_argument("--ip", default="127.0.0.1", help="the client's address (node id, metadata)")
    g.add_argument(
        "--cert-dir",
        help="directory of the workload's cert-chain.pem, key.pem, root-cert.pem: mTLS through "
        "gRPC's xDS credentials (dial with grpc.xds_channel_credentials)",
    )
    g.add_argument("-o", "--output", help="file to write (default: standard output)")
    g.set_defaults(func=_run)
