"""`shoal agent`: run one sidecar Envoy for one workload (see shoal.agent).

`shoal agent reload` asks a running agent to hot-restart its Envoy. It POSTs to the agent's
health port (Istio's 15021) rather than sending SIGHUP: the port is known without a pid file,
works across PID namespaces (a debug container), and the answer comes back -- the new epoch
and how long it took, or why the restart was refused (an options file that does not parse,
a bootstrap Envoy rejects) -- so the command's exit code says whether it happened. SIGHUP to
the agent does the same for process managers (`systemctl reload`), with the outcome in its log.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request

from shoal.agent.args import add_arguments


def reload(args: argparse.Namespace) -> int:
    url = f"http://{args.host}:{args.health_port}/reload"
    req = urllib.request.Request(url, method="POST", data=b"")
    try:
        with urllib.request.urlopen(req, timeout=args.timeout) as resp:
            body = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        detail = json.loads(err.read() or b"{}").get("error", err.reason)
        print(f"shoal agent reload: refused: {detail}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        print(f"shoal agent reload: no agent at {url}: {reason}", file=sys.stderr)
        return 1
    kind = "hot restart" if body.get("hot") else "cold restart"
    print(
        f"envoy epoch {body['epoch']} (pid {body['pid']}, base id {body['base_id']}) LIVE "
        f"after {body['seconds']:.2f} s ({kind})"
    )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    agent = sub.add_parser("agent", help="run a sidecar or gateway Envoy for one workload")
    add_arguments(agent)
    actions = agent.add_subparsers(dest="agent_command", required=False, metavar="reload")
    r = actions.add_parser("reload", help="hot-restart a running agent's Envoy")
    r.add_argument("--health-port", type=int, default=15021, help="the agent's health port")
    r.add_argument("--host", default="127.0.0.1")
    r.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the answer")
    r.set_defaults(func=reload)
