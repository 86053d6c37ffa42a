"""`LocalGateway` (shoal.dev/v1alpha1): an ingress gateway Envoy run by `shoal up`.

`shoal up` starts one `shoal agent --mode router` per LocalGateway, with the given labels;
Gateways whose `selector` matches those labels give it its listeners. Each Gateway server
port is bound as is on 127.0.0.1 (so pick unprivileged port numbers such as 8080 and 8443).
"""

from __future__ import annotations

from pydantic import Field

from shoal.api.base import ApiModel


class LocalGatewaySpec(ApiModel):
    labels: dict[str, str] = Field(default_factory=dict)
    service_account: str = ""
