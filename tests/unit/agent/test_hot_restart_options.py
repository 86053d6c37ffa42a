"""The agent's options file and the argv of each hot-restart epoch (no Envoy needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.agent.epochs import BinaryFingerprint, EnvoyOptions, epoch_argv
from shoal.agent.options import OptionsError, load_options, merged, parse_addresses


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent-options.yaml"
    path.write_text(text)
    return path


def test_options_file_keys(tmp_path: Path) -> None:
    binary = tmp_path / "envoy"
    binary.write_text("#!/bin/sh\n")
    opts = load_options(
        _write(
            tmp_path,
            f"xdsAddress: 10.0.0.5:15010, cp2:15011\napiType: DELTA_GRPC\nenvoy: {binary}\n"
            "bootstrapOverride:\n  stats_flush_interval: 7s\n",
        )
    )
    assert opts.xds == (("10.0.0.5", 15010), ("cp2", 15011))
    assert opts.api_type == "DELTA_GRPC" and opts.envoy == str(binary)
    assert opts.bootstrap_override == {"stats_flush_interval": "7s"}
    assert load_options(_write(tmp_path, "")).xds == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("apiType: GRPC\nxdsAdress: a:1\n", ":2: xdsAdress: unknown key"),
        ("apiType: GRPC\nxdsAddress: nowhere\n", ":2: xdsAddress: 'nowhere' is not host:port"),
        ("xdsAddress: a:99999\n", ":1: xdsAddress: 'a:99999' is not host:port"),
        ("\napiType: REST\n", ":2: apiType: 'REST' is not one of GRPC, DELTA_GRPC"),
        ("envoy: /no/such/envoy\n", ":1: envoy: /no/such/envoy is not a file"),
        ("bootstrapOverride: [1]\n", ":1: bootstrapOverride: must be a mapping"),
        ("- a\n", ":1: the options file must be a mapping"),
        ("a: [\n", ": not YAML"),
    ],
)
def test_bad_options_name_file_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(OptionsError) as err:
        load_options(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value), str(err.value)


def test_missing_options_file(tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match="cannot read"):
        load_options(tmp_path / "absent.yaml")


def test_parse_addresses() -> None:
    assert parse_addresses(":15010") == (("127.0.0.1", 15010),)
    assert parse_addresses("[::1]:15010") == (("::1", 15010),)
    with pytest.raises(ValueError, match="no address"):
        parse_addresses(" , ")


def test_override_merges_mappings_and_replaces_the_rest() -> None:
    base = {"node": {"id": "x", "metadata": {"A": "1"}}, "layers": [1, 2]}
    out = merged(base, {"node": {"metadata": {"B": "2"}}, "layers": [3]})
    assert out == {"node": {"id": "x", "metadata": {"A": "1", "B": "2"}}, "layers": [3]}
    assert base["node"] == {"id": "x", "metadata": {"A": "1"}}  # the input is not touched


def test_epoch_argv() -> None:
    opts = EnvoyOptions(concurrency=2, drain_s=1.5, parent_shutdown_s=0)
    first = epoch_argv(
        "envoy", Path("b.json"), opts, epoch=0, base_id=None, base_id_path=Path("id")
    )
    assert first[-3:] == ["--use-dynamic-base-id", "--base-id-path", "id"]
    # drain rounded up to whole seconds; the parent lives at least a second past the drain
    assert first[first.index("--drain-time-s") + 1] == "2"
    assert first[first.index("--parent-shutdown-time-s") + 1] == "3"
    assert first[first.index("--restart-epoch") + 1] == "0"
    later = epoch_argv("envoy", Path("b.json"), opts, epoch=3, base_id=42, base_id_path=Path("id"))
    assert later[-2:] == ["--base-id", "42"] and "--use-dynamic-base-id" not in later
    assert later[later.index("--restart-epoch") + 1] == "3"
    cold = epoch_argv(
        "envoy",
        Path("b.json"),
        EnvoyOptions(hot_restart=False),
        epoch=0,
        base_id=None,
        base_id_path=Path("id"),
    )
    assert "--disable-hot-restart" in cold and "--restart-epoch" not in cold
    with pytest.raises(AssertionError):
        epoch_argv("envoy", Path("b.json"), opts, epoch=1, base_id=None, base_id_path=Path("id"))


def test_binary_fingerprint_follows_the_file_a_path_names(tmp_path: Path) -> None:
    a, b, link = tmp_path / "a", tmp_path / "b", tmp_path / "envoy"
    a.write_text("one")
    b.write_text("two")
    link.symlink_to(a)
    first = BinaryFingerprint.of(str(link))
    assert BinaryFingerprint.of(str(link)) == first
    link.unlink()
    link.symlink_to(b)
    assert BinaryFingerprint.of(str(link)) != first
    replaced = tmp_path / "new"
    replaced.write_text("two")
    replaced.replace(b)  # an upgrade moving a new file into place
    assert BinaryFingerprint.of(str(link)).inode != first.inode
