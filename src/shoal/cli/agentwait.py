"""`shoal agent-wait` (also `python -m shoal.cli.agentwait`): return once the agent's
readiness URL answers 2xx (exit 0), or fail after a timeout (exit 1).

The injector makes it the agent container's postStart hook (Istio's `pilot-agent wait`): the
kubelet starts the pod's application containers only after it returns, so an application
never calls out before its sidecar can carry the call (shoal.kube.inject). The hook runs it as
`python -m shoal.cli.agentwait`: this module imports nothing of shoal, so it starts in a
fraction of the time the whole `shoal` command takes to import, and the application waits
for its agent, not for an interpreter.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.error
import urllib.request


def wait_ready(url: str, timeout_s: float, period_s: float) -> bool:
    """Poll `url` until it answers 2xx (True) or `timeout_s` has passed (False)."""
    # never through a proxy: the URL is the pod's own agent
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with opener.open(url, timeout=max(0.5, min(period_s * 5, 2.0))) as resp:
                if 200 <= resp.status < 300:
                    return True
        except (OSError, urllib.error.URLError):
            pass  # not listening yet, or 503 (HTTPError is an OSError): not ready
        if time.monotonic() >= deadline:
            return False
        time.sleep(period_s)


def _run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    if wait_ready(args.url, args.timeout, args.period):
        print(f"agent ready after {time.monotonic() - started:.1f} s", file=sys.stderr)
        return 0
    print(f"shoal agent-wait: {args.url} not ready after {args.timeout:g} s", file=sys.stderr)
    return 1


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--url", default="http://127.0.0.1:15021/healthz/ready", help="the agent's readiness URL"
    )
    p.add_argument("--timeout", type=float, default=60.0, help="seconds before giving up")
    p.add_argument("--period", type=float, default=0.1, help="seconds between polls")
    p.set_defaults(func=_run)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_arguments(
        sub.add_parser("agent-wait", help="wait until the pod's agent is ready (postStart hook)")
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shoal.cli.agentwait", description=__doc__)
    add_arguments(p)
    return _run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
