"""`python -m shoal.agent`: the agent without the rest of shoal loaded.

`shoal up` starts one agent per replica this way: importing only the agent (aiohttp, no grpc,
protobuf or pydantic) halves each sidecar's memory next to `shoal agent`.
"""

from __future__ import annotations

import argparse
import logging
import sys

from shoal.agent.args import add_arguments


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shoal.agent")
    parser.add_argument("--log-level", default="WARNING")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
