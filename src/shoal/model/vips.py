"""Service addresses (VIPs) for LocalWorkload services, handed out by `shoal up --netns`.

A pod reaches a service by a virtual IP that only its capture rules make meaningful (the
sidecar's `VIP_PORT` listeners, the route tables' domains, the pods' hosts files). A host gets
the next free address of the range the first time a snapshot names it and keeps it for the
life of the control plane, so adding or removing services never moves another one's VIP.
Pure: a counter and a map, advanced by the snapshot builder.
"""

from __future__ import annotations

import ipaddress


class VipRangeFull(RuntimeError):
    """Every address of the range is taken."""


class LocalVips:
    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr, strict=False)
        if self.network.version != 4:
            raise ValueError(f"{cidr}: only IPv4 service ranges are implemented")
        self._given: dict[str, str] = {}
        self._next = 1  # .0 is the network's own address

    def get(self, hostname: str) -> str:
        found = self._given.get(hostname)
        if found is None:
            if self._next >= self.network.num_addresses - 1:
                raise VipRangeFull(f"service address range {self.network} is full")
            found = self._given[hostname] = str(self.network.network_address + self._next)
            self._next += 1
        return found

    def given(self) -> dict[str, str]:
        """hostname -> VIP of every host given one so far."""
        return dict(self._given)
