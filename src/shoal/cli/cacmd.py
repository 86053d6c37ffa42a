"""`shoal ca`: look after the CA directory (root rotation) of a secure control plane, and
issue the bootstrap token a workload on another host joins with (`issue-token`), and a node
proxy's token naming its node and its pods' identities (`issue-node-token`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shoal.ca import CertificateAuthority, TokenIssuer
from shoal.ca.certs import fingerprint
from shoal.ca.files import write_secret
from shoal.ca.identity import Identity, IdentityError
from shoal.ca.nodetokens import NodeTokens
from shoal.ca.tokens import DEFAULT_TTL_S


def _describe(ca: CertificateAuthority) -> str:
    return json.dumps(
        {"root": fingerprint(ca.root), "trusted_roots": [fingerprint(r) for r in ca.roots]}
    )


def _issue_token(args: argparse.Namespace) -> int:
    try:
        identity = Identity(args.namespace, args.service_account)
    except IdentityError as err:
        print(f"shoal ca issue-token: {err}", file=sys.stderr)
        return 2
    token = TokenIssuer.in_dir(Path(args.ca_dir)).issue(identity, ttl_s=args.ttl)
    if args.output:
        write_secret(Path(args.output), token.encode())
    else:
        print(token)
    return 0


def _issue_node_token(args: argparse.Namespace) -> int:
    try:
        if not args.node:
            raise IdentityError("--node NAME is required")
        identities = []
        for raw in args.identity:
            namespace, sep, account = raw.partition("/")
            if not sep:
                raise IdentityError(f"--identity {raw!r} must be NAMESPACE/SERVICE_ACCOUNT")
            identities.append(Identity(namespace, account))
        tokens = NodeTokens.in_dir(Path(args.ca_dir))
        token = tokens.issue(args.node, identities, ttl_s=args.ttl)
    except IdentityError as err:
        print(f"shoal ca issue-node-token: {err}", file=sys.stderr)
        return 2
    if args.output:
        write_secret(Path(args.output), token.encode())
    else:
        print(token)
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.action == "issue-token":
        return _issue_token(args)
    if args.action == "issue-node-token":
        return _issue_node_token(args)
    ca = CertificateAuthority(Path(args.ca_dir))
    if args.action == "rotate-root":
        ca.rotate_root()
    elif args.action == "retire-old-roots":
        ca.retire_old_roots()
    print(_describe(ca))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "ca", help="show the CA, rotate its root, retire old roots, issue a workload token"
    )
    p.add_argument(
        "action",
        choices=["show", "rotate-root", "retire-old-roots", "issue-token", "issue-node-token"],
    )
    p.add_argument("--ca-dir", required=True, help="the control plane's --ca-dir")
    tok = p.add_argument_group("issue-token: a bootstrap token for `shoal agent --token-file`")
    tok.add_argument("--namespace", default="default")
    tok.add_argument("--service-account", default="default")
    tok.add_argument("--ttl", type=float, default=DEFAULT_TTL_S, help="seconds (default 30 days)")
    tok.add_argument("--output", "-o", help="write it to this 0600 file instead of stdout")
    node = p.add_argument_group(
        "issue-node-token: a node proxy's token (`shoal agent --mode node`)"
    )
    node.add_argument("--node", help="the node's name (its agent's --name)")
    node.add_argument(
        "--identity",
        action="append",
        default=[],
        metavar="NAMESPACE/SERVICE_ACCOUNT",
        help="an identity of a pod on the node (repeat); the CA issues the node no other",
    )
    p.set_defaults(func=_run)
