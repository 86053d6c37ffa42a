"""Name lookups inside a `shoal up --netns` pod: the hosts file vs no lookup at all.

A pod on a bridge of its own (runtime/podnet.py) gets a hosts file the way `shoal up` writes it
(runtime/pods.py: one line per service) for 10 and 1,000 services; inside the pod (`ip netns
exec`, which mounts that file over /etc/hosts) one Python process times `getaddrinfo` of a
service's short name (the last line: the whole file is read), beside a numeric address (no
file read: the floor) in the same process. Needs root. `python benchmarks/netns_names_bench.py`
(~5 s).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from shoal.runtime.podnet import PodNetwork

PROBE = """
import socket, sys, time
def per_call(host, n=2000):
    socket.getaddrinfo(host, 80)
    started = time.perf_counter()
    for _ in range(n):
        socket.getaddrinfo(host, 80)
    return (time.perf_counter() - started) / n * 1e6
name, numeric = sys.argv[1], sys.argv[2]
for _ in range(3):
    print(f"{per_call(name):.1f} {per_call(numeric):.1f}")
"""


def main() -> None:
    if os.geteuid() != 0:
        raise SystemExit("netns_names_bench needs root (network namespaces)")
    with tempfile.TemporaryDirectory() as state:
        net = PodNetwork(Path(state), subnet="10.254.77", tag=f"b{os.getpid() % 10000}").open()
        try:
            for services in (10, 1000):
                hosts = {
                    f"svc{i} svc{i}.default svc{i}.default.svc svc{i}.default.svc.cluster.local":
                    f"10.96.{i // 250}.{i % 250 + 1}"
                    for i in range(services)
                }  # fmt: skip
                pod = net.add_pod(f"p{services}", hosts=hosts)
                last = f"svc{services - 1}"
                out = subprocess.run(
                    ["ip", "netns", "exec", pod.netns, sys.executable, "-c", PROBE, last,
                     "10.96.0.1"],
                    capture_output=True, text=True, check=True, timeout=120,
                )  # fmt: skip
                rounds = [
                    tuple(map(float, line.split())) for line in out.stdout.split("\n") if line
                ]
                name_us = min(r[0] for r in rounds)
                floor_us = min(r[1] for r in rounds)
                print(
                    f"{services:>5} services: getaddrinfo('{last}') {name_us:7.1f} us, "
                    f"numeric floor {floor_us:5.1f} us, +{name_us - floor_us:.1f} us per lookup"
                )
        finally:
            net.close()


if __name__ == "__main__":
    main()
