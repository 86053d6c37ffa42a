"""Running an aiohttp app on 127.0.0.1 until SIGTERM/SIGINT, shared by the sample programs.

`shoal up` stops workloads with SIGTERM; the programs stop accepting, let in-flight requests
finish for a short while and exit 0, so a replica restart never shows up as a burst of errors
the mesh did not cause.
"""

from __future__ import annotations

import asyncio
import signal

from aiohttp import web

# Long enough for a request with injected latency to finish, short enough for a quick demo exit.
SHUTDOWN_TIMEOUT = 5.0


async def start(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve `app` on host:port (0 picks a free port); return the runner and the bound port."""
    # The service logs its own requests at DEBUG; aiohttp's access log would be noise.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    address = runner.addresses[0]
    return runner, int(address[1])


def stop_on_signals() -> asyncio.Event:
    """An event set by the first SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def serve_until_signal(app: web.Application, host: str, port: int) -> None:
    """Serve `app` until SIGTERM/SIGINT, then shut down gracefully."""
    stop = stop_on_signals()
    runner, _ = await start(app, host, port)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
