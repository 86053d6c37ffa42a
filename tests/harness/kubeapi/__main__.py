"""``python -m tests.harness.kubeapi --port N``: the fake API server on 127.0.0.1:N."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from .runner import write_kubeconfig
from .server import KubeAPIServer


async def _serve(args: argparse.Namespace) -> None:
    api = KubeAPIServer(args.port, args.host, tls=args.tls, history_size=args.history)
    api.settings.bookmark_interval = args.bookmark_interval
    api.settings.log_requests = args.verbose
    for namespace, name, host, port in args.service:
        api.map_service(namespace, name, host, port)
    async with api:
        if args.kubeconfig:
            write_kubeconfig(Path(args.kubeconfig), api.url, ca_pem=api.ca_pem)
        print(f"fake Kubernetes API server on {api.url}", flush=True)
        if args.kubeconfig:
            print(f"kubeconfig written to {args.kubeconfig}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()


def _service(text: str) -> tuple[str, str, str, int]:
    try:
        svc, where = text.split("=", 1)
        namespace, name = svc.split("/", 1)
        host, port = where.rsplit(":", 1)
        return namespace, name, host, int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: want NS/NAME=HOST:PORT") from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.harness.kubeapi", description=__doc__)
    p.add_argument("--port", type=int, default=6443, help="TCP port on --host (0: any free one)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--tls", action="store_true", help="serve HTTPS with a self-signed cert")
    p.add_argument("--kubeconfig", help="write a kubeconfig pointing at the server here")
    p.add_argument("--history", type=int, default=10_000, help="watch history ring size")
    p.add_argument("--bookmark-interval", type=float, default=60.0, help="seconds")
    p.add_argument(
        "--service",
        type=_service,
        action="append",
        default=[],
        metavar="NS/NAME=HOST:PORT",
        help="where admission webhook calls to Service NAME.NS.svc go (no cluster network "
        "here), e.g. shoal-system/shoal-control-plane=127.0.0.1:15017; repeatable",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="print every request")
    args = p.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
