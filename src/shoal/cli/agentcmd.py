"""`shoal agent`: run one sidecar Envoy for one workload (see shoal.agent)."""

from __future__ import annotations

import argparse

from shoal.agent.args import add_arguments


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_arguments(sub.add_parser("agent", help="run a sidecar or gateway Envoy for one workload"))
