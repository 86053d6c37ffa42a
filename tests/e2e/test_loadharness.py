"""The load harness's simulated sidecars receive exactly what real Envoys receive.

Real Envoys and simulated sidecars with the same identity (namespace, labels, workload, ports;
only the pod name differs) connect to one control plane serving one mesh. For every pair, per
xDS type, the resource names Envoy reports in ``/config_dump`` equal those the simulated proxy
holds, and the versions equal what ``/debug/syncz`` shows ACKed for each of them.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.adminhttp import get_json
from harness.configdir import ConfigDir
from harness.controlplane import wait_synced
from harness.envoy import ApiType, sidecar_bootstrap, sidecar_node
from harness.ports import free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from loadharness.client import Fleet
from loadharness.protocol import CDS, EDS, LDS, RDS, SHORT, TYPES, Identity
from meshgen import generate_mesh, namespaces

pytestmark = pytest.mark.envoy

_DUMP = "type.googleapis.com/envoy.admin.v3."


def envoy_holds(admin_url: str) -> dict[str, dict[str, str | None]]:
    """Per type: resource name -> version_info, from Envoy's own config dump (EDS: the
    assignments of its EDS clusters; Envoy leaves their version out of the dump)."""
    dump = get_json(admin_url + "/config_dump?include_eds")
    out: dict[str, dict[str, str | None]] = {t: {} for t in TYPES}
    eds_clusters: set[str] = set()
    for cfg in dump["configs"]:
        kind = cfg["@type"].removeprefix(_DUMP)
        if kind == "ClustersConfigDump":
            for c in cfg.get("dynamic_active_clusters", []):
                out[CDS][c["cluster"]["name"]] = c["version_info"]
                if c["cluster"].get("type") == "EDS":
                    eds_clusters.add(c["cluster"]["name"])
        elif kind == "ListenersConfigDump":
            for lst in cfg.get("dynamic_listeners", []):
                out[LDS][lst["name"]] = lst["active_state"]["version_info"]
        elif kind == "RoutesConfigDump":
            for r in cfg.get("dynamic_route_configs", []):
                out[RDS][r["route_config"]["name"]] = r["version_info"]
        elif kind == "EndpointsConfigDump":
            for e in cfg.get("dynamic_endpoint_configs", []):
                out[EDS][e["endpoint_config"]["cluster_name"]] = e.get("version_info")
    # the endpoint dump also lists clusters that are not EDS (dynamic forward proxy ...)
    out[EDS] = {n: v for n, v in out[EDS].items() if n in eds_clusters}
    return out


async def _compare(
    api_type: ApiType, n: int, config_dir: ConfigDir, control_plane_factory: Any, envoys: Any
) -> None:
    for name, text in generate_mesh(12, 3, 3, 0.5).items():
        (config_dir.path / name).parent.mkdir(parents=True, exist_ok=True)
        config_dir.write(name, text)
    cp = control_plane_factory(config_dir)
    names = namespaces(3)
    pairs = []
    for i in range(n):
        ns, out_port, in_port = names[i % 3], free_port(), free_port()
        node_id, meta = sidecar_node(f"w{i}", ns, outbound_port=out_port, inbound_port=in_port)
        bootstrap = sidecar_bootstrap(node_id, meta, cp.xds_port, free_port(), api_type=api_type)
        envoy = envoys(bootstrap, name=f"w{i}", wait="admin")
        pairs.append((envoy, node_id, Identity(f"sim{i}", ns, out_port, in_port, app=f"w{i}")))
    fleet = Fleet(f"127.0.0.1:{cp.xds_port}", [p[2] for p in pairs], delta=api_type != "GRPC")
    try:
        await fleet.start()
        assert await fleet.wait(fleet.all_acked, 20), fleet.errors()
        syncz = await asyncio.to_thread(wait_synced, cp, 2 * n, 30)
        acked = {p["node"]: {t: s["acked"] for t, s in p["types"].items()} for p in syncz}
        for (envoy, node_id, ident), sim in zip(pairs, fleet.proxies, strict=True):
            held = await asyncio.to_thread(envoy_holds, envoy.admin_url)
            for t in TYPES:
                short, mine = SHORT[t], sim.state.holds(t)
                assert set(mine) == set(held[t]), f"{ident.pod} vs {envoy.name}: {short} names"
                # what the simulated proxy ACKed is what shoal records for it, and equal
                # identities get equal config: the same version as the Envoy beside it
                assert sim.state.types[t].version == acked[ident.node_id][short]
                assert acked[node_id][short] == acked[ident.node_id][short], short
                if api_type == "GRPC":
                    # state of the world: every resource carries its response's version
                    assert set(mine.values()) == {acked[ident.node_id][short]}
                    if t != EDS:
                        assert set(held[t].values()) == {acked[node_id][short]}, short
            assert len(sim.state.holds(CDS)) > 12 and sim.state.holds(RDS)
    finally:
        await fleet.stop()


@pytest.mark.parametrize(("api_type", "n"), [("GRPC", 20), ("DELTA_GRPC", 5)])
async def test_simulated_sidecars_hold_what_envoy_holds(
    api_type: ApiType,
    n: int,
    config_dir: ConfigDir,
    control_plane_factory: Any,
    envoy_factory: Any,
) -> None:
    await _compare(api_type, n, config_dir, control_plane_factory, envoy_factory)
