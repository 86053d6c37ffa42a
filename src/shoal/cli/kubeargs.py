"""`shoal control-plane --kubernetes [--kubeconfig F]`: the Kubernetes source's options.

Without `--kubeconfig` the control plane uses its pod's service account (in-cluster). The
Lease timings default to Istio's (30 s lease, 15 s renew deadline, 7.5 s retry); tests and
small clusters may shorten them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from shoal.controlplane.kubernetes import KubeSettings, default_identity
from shoal.kube.leader import LeaseSettings


def add_arguments(cp: argparse.ArgumentParser) -> None:
    kube = cp.add_argument_group("Kubernetes source (informers, TokenReview, leader Lease)")
    kube.add_argument(
        "--kubernetes",
        action="store_true",
        help="watch the Kubernetes API (Services, EndpointSlices, Pods, Istio CRDs)",
    )
    kube.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster credentials)")
    kube.add_argument("--replica-name", default=None, help="this replica's Lease identity")
    kube.add_argument("--lease-ttl", type=float, default=30.0, help="Lease duration, seconds")
    kube.add_argument("--lease-renew", type=float, default=15.0, help="renew deadline, seconds")
    kube.add_argument("--lease-retry", type=float, default=7.5, help="retry period, seconds")


def kube_settings(args: argparse.Namespace) -> KubeSettings | None:
    """The settings, None without --kubernetes; ValueError for inconsistent options."""
    if not args.kubernetes:
        if args.kubeconfig:
            raise ValueError("--kubeconfig needs --kubernetes")
        return None
    kubeconfig = Path(args.kubeconfig).resolve() if args.kubeconfig else None
    if kubeconfig is not None and not kubeconfig.is_file():
        raise ValueError(f"--kubeconfig {kubeconfig}: no such file")
    lease = LeaseSettings(
        lease_s=args.lease_ttl, renew_s=args.lease_renew, retry_s=args.lease_retry
    )
    return KubeSettings(
        kubeconfig=kubeconfig, identity=args.replica_name or default_identity(), lease=lease
    )
