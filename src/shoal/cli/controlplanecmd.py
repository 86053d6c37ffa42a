"""`shoal control-plane`: xDS, the CA, webhooks and the admin API, from files or Kubernetes."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from shoal.cli import kubeargs
from shoal.cli.limits import add_max_file_bytes, add_namespace
from shoal.controlplane.app import ControlPlane, Settings
from shoal.controlplane.autoregister import DEFAULT_GRACE_S
from shoal.kube import names
from shoal.kube.inject import InjectorSettings
from shoal.sources.jwks import DEFAULT_REFRESH_S


def _control_plane(args: argparse.Namespace) -> int:
    try:
        kube = kubeargs.kube_settings(args)
    except ValueError as err:
        print(f"shoal: {err}", file=sys.stderr)
        return 2
    if args.config_dir is None and kube is None:
        print("shoal: control-plane needs --config-dir DIR, --kubernetes, or both", file=sys.stderr)
        return 2
    config_dir = Path(args.config_dir).resolve() if args.config_dir else None
    if config_dir is not None and not config_dir.is_dir():
        print(f"shoal: --config-dir {config_dir}: not a directory", file=sys.stderr)
        return 2
    settings = Settings(
        config_dir=config_dir,
        host=args.host,
        xds_extra_hosts=tuple(args.xds_also_on),
        xds_port=args.xds_port,
        admin_port=args.admin_port,
        debounce_s=args.debounce_ms / 1000,
        max_file_bytes=args.max_file_bytes,
        namespace=args.namespace,
        jwks_refresh_s=args.jwks_refresh,
        test_hooks=args.test_hooks,
        secure=args.secure,
        ca_dir=Path(args.ca_dir).resolve() if args.ca_dir else None,
        cert_ttl_s=args.cert_ttl,
        serving_cert_ttl_s=args.serving_cert_ttl,
        webhook_port=args.webhook_port,
        injector=InjectorSettings(
            image=args.proxy_image, xds_address=args.proxy_xds_address, revision=args.revision
        ),
        kubernetes=kube,
        workload_entry_grace_s=args.workload_entry_grace_period,
        xds_keepalive_s=args.xds_keepalive,
        xds_keepalive_timeout_s=args.xds_keepalive_timeout,
    )
    if args.webhook_port is not None and args.ca_dir is None:
        print("shoal: --webhook-port needs --ca-dir DIR (its serving certificate)", file=sys.stderr)
        return 2
    if args.secure and args.ca_dir is None:
        print("shoal: --secure needs --ca-dir DIR (the CA's files)", file=sys.stderr)
        return 2
    asyncio.run(ControlPlane(settings).run())
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cp = sub.add_parser(
        "control-plane", help="serve xDS from a directory of Istio YAML and/or Kubernetes"
    )
    cp.add_argument("--config-dir", help="folder of Istio-compatible YAML files (VMs, local)")
    cp.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    cp.add_argument("--xds-port", type=int, default=15010)
    cp.add_argument(
        "--xds-also-on",
        action="append",
        default=[],
        metavar="HOST",
        help="serve xDS (and the CA) on HOST too, at the same port: e.g. a pod bridge's address",
    )
    cp.add_argument("--admin-port", type=int, default=15014)
    cp.add_argument("--debounce-ms", type=int, default=100, help="quiet time before a push")
    add_max_file_bytes(cp)
    add_namespace(cp)
    cp.add_argument(
        "--jwks-refresh",
        type=float,
        default=DEFAULT_REFRESH_S,
        metavar="S",
        help="fetch the keys of http(s) jwksUris again every S seconds "
        f"(default {DEFAULT_REFRESH_S:g}; the last good keys stay while an issuer is down)",
    )
    cp.add_argument("--secure", action="store_true", help="TLS, tokens and the CA on the xDS port")
    cp.add_argument("--ca-dir", help="CA files (created on first start); needed by --secure")
    cp.add_argument(
        "--cert-ttl", type=float, default=86400, help="workload certificate lifetime, seconds"
    )
    cp.add_argument(
        "--serving-cert-ttl",
        type=float,
        default=30 * 86400,
        help="lifetime of the xDS/CA port's own certificate, seconds (renewed at half-life)",
    )
    kubeargs.add_arguments(cp)
    joins = cp.add_argument_group("workloads joining from other hosts (WorkloadGroup)")
    joins.add_argument(
        "--workload-entry-grace-period",
        type=float,
        default=DEFAULT_GRACE_S,
        metavar="SECONDS",
        help="an auto-registered WorkloadEntry stays this long after its proxy disconnects "
        "(Istio's PILOT_WORKLOAD_ENTRY_GRACE_PERIOD; default %(default)s)",
    )
    joins.add_argument(
        "--xds-keepalive",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="ping every xDS stream this often, so a host whose network is gone is noticed",
    )
    joins.add_argument(
        "--xds-keepalive-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="close an xDS stream whose ping is not answered within this",
    )
    hooks = cp.add_argument_group("admission webhooks (sidecar injection, validation)")
    hooks.add_argument(
        "--webhook-port",
        type=int,
        help="serve /inject and /validate over HTTPS (15017 in a cluster)",
    )
    hooks.add_argument("--proxy-image", default=names.DEFAULT_IMAGE, help="injected agent image")
    hooks.add_argument(
        "--proxy-xds-address",
        default=InjectorSettings().xds_address,
        help="where injected agents find the control plane (host:port)",
    )
    hooks.add_argument("--revision", default="", help="istio.io/rev this control plane serves")
    cp.add_argument("--test-hooks", action="store_true", help=argparse.SUPPRESS)
    cp.set_defaults(func=_control_plane)
