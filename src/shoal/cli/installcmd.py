"""`shoal install`: put shoal into a Kubernetes cluster (or print what that would apply).

`--dry-run` prints the manifests as multi-document YAML (`| kubectl apply -f -` works);
without it they are applied through the API server (create, or merge-patch what exists).
The mesh CA lives in the Secret `shoal-ca`, shared by every control-plane replica: `--ca-dir`
names a CA directory to use (created if empty); without it a new CA is made, once, on the
first install; a re-install keeps the cluster's CA.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from shoal.ca.authority import ROOTS, CertificateAuthority
from shoal.ca.tokens import TokenIssuer
from shoal.kube import names
from shoal.kube.client import KubeError
from shoal.kube.install import apply_all, connect, existing_ca
from shoal.kube.kustomize import kustomize_files
from shoal.kube.manifests import InstallOptions, manifests, render


def ca_files(ca_dir: Path) -> dict[str, bytes]:
    """The CA directory's files (a new CA is made there if it has none)."""
    CertificateAuthority(ca_dir)
    TokenIssuer.in_dir(ca_dir)
    return {p.name: p.read_bytes() for p in sorted(ca_dir.iterdir()) if p.is_file()}


def _options(args: argparse.Namespace, ca_bundle: str) -> InstallOptions:
    return InstallOptions(
        replicas=args.replicas,
        image=args.image,
        proxy_image=args.proxy_image or "",
        revision=args.revision,
        ca_bundle=ca_bundle,
        inject_all=args.inject_all,
    )


def _dry_run(args: argparse.Namespace) -> int:
    files = ca_files(Path(args.ca_dir)) if args.ca_dir else None
    bundle = files[ROOTS].decode() if files else ""
    if files is None:
        print(
            "# The CA Secret shoal-ca and the webhooks' caBundle are left out: pass --ca-dir DIR\n"
            "# to include them, or run `shoal install` (it creates the CA in the cluster)."
        )
    sys.stdout.write(render(manifests(_options(args, bundle), ca_files=files)))
    return 0


async def _apply(args: argparse.Namespace) -> int:
    client = connect(Path(args.kubeconfig) if args.kubeconfig else None)
    try:
        held = await existing_ca(client)
        if held is not None and ROOTS in held:
            files, bundle = None, held[ROOTS].decode()
            print(f"keeping the cluster's CA (Secret {names.NAMESPACE}/shoal-ca)")
        elif args.ca_dir:
            files = ca_files(Path(args.ca_dir))
            bundle = files[ROOTS].decode()
        else:
            with tempfile.TemporaryDirectory(prefix="shoal-ca-") as tmp:
                files = ca_files(Path(tmp) / "ca")
            bundle = files[ROOTS].decode()
        for line in await apply_all(client, manifests(_options(args, bundle), ca_files=files)):
            print(line)
    finally:
        await client.close()
    return 0


def _write_kustomize(target: Path) -> int:
    target.mkdir(parents=True, exist_ok=True)
    for name, text in kustomize_files().items():
        (target / name).write_text(text)
        print(f"wrote {target / name}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.write_kustomize:
        return _write_kustomize(Path(args.write_kustomize))
    if args.dry_run:
        return _dry_run(args)
    try:
        return asyncio.run(_apply(args))
    except KubeError as err:  # includes a missing kubeconfig
        print(f"shoal install: {err}", file=sys.stderr)
        return 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "install",
        help="install shoal into a Kubernetes cluster (or print the manifests)",
        description="Apply shoal's CRDs, namespace, RBAC, control-plane Deployment and Service "
        "and its admission webhooks through the API server.",
    )
    p.add_argument("--dry-run", action="store_true", help="print the manifests, apply nothing")
    p.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)"
    )
    p.add_argument("--replicas", type=int, default=2, help="control-plane replicas")
    p.add_argument("--image", default=names.DEFAULT_IMAGE, help="the control plane's image")
    p.add_argument("--proxy-image", help="the injected agent's image (default: --image)")
    p.add_argument("--revision", default="", help="istio.io/rev of this control plane")
    p.add_argument(
        "--inject-all",
        action="store_true",
        help="inject every namespace not labelled otherwise (Istio's enableNamespacesByDefault)",
    )
    p.add_argument("--ca-dir", help="CA directory to install (a new CA is made there if empty)")
    p.add_argument(
        "--write-kustomize", metavar="DIR", help="write the kustomize base to DIR and exit"
    )
    p.set_defaults(func=run)
