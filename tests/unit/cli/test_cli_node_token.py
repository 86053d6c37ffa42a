"""`shoal ca issue-node-token` and `shoal agent --mode node`'s argument checks."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from shoal.agent.args import add_arguments, run
from shoal.ca import Identity
from shoal.ca.nodetokens import NodeTokens
from shoal.cli.main import main


def test_issue_node_token_names_the_node_and_its_pods(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "node.token"
    argv = ["ca", "issue-node-token", "--ca-dir", str(tmp_path), "--node", "n1"]
    code = main(
        [*argv, "--identity", "shop/frontend", "--identity", "shop/reviews", "-o", str(out)]
    )
    assert code == 0
    assert out.stat().st_mode & 0o777 == 0o600
    grant = NodeTokens.in_dir(tmp_path).verify(out.read_text().strip())
    assert grant.node == "n1"
    assert grant.identities == {Identity("shop", "frontend"), Identity("shop", "reviews")}
    assert main([*argv, "--identity", "frontend"]) == 2
    assert "must be NAMESPACE/SERVICE_ACCOUNT" in capsys.readouterr().err


def _agent(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_node_agent_needs_a_readable_pod_list(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--mode node needs --pods FILE"):
        run(_agent("--mode", "node", "--name", "n1"))
    with pytest.raises(SystemExit, match="--pods is for --mode node"):
        run(_agent("--name", "a", "--outbound-port", "15001", "--pods", "x.json"))
    pods = tmp_path / "pods.json"
    pods.write_text(json.dumps([{"name": "a", "namespace": "default", "ip": "10.0.0.2"}]))
    with pytest.raises(SystemExit, match="pod 0 has no 'netns'"):
        run(_agent("--mode", "node", "--name", "n1", "--pods", str(pods)))
    pods.write_text("{not json")
    with pytest.raises(SystemExit, match=f"--pods {pods}"):
        run(_agent("--mode", "node", "--name", "n1", "--pods", str(pods)))
