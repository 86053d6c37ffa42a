"""DestinationRule traffic policy (networking.istio.io): load balancing, connection pools,
outlier detection and the retry budget, with Istio's field names, units and defaults.

Istio's protobuf oneofs (`simple` or `consistentHash`; one hash key; `ringHash` or
`maglev`) are checked here so the mistake is reported at load time with its field, not
NACKed by Envoy. How a DestinationRule's levels combine (service, port, subset) is
`effective_policy`, following Istio's MergeTrafficPolicy: a subset's policy replaces the
service's component by component, and a `portLevelSettings` entry for the port replaces
loadBalancer, connectionPool, outlierDetection and tls as a whole (omitted ones fall back to
defaults, not to the level above). `tls` is clienttls.py.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from shoal.api.base import ApiModel, Bool, Port, field_error
from shoal.api.clienttls import ClientTLSSettings
from shoal.api.duration import Duration
from shoal.api.httpgrammar import CookieName, CookieText, MatchHeaderName

# Istio's int32 fields: negative values are refused by Istio's validation.
NonNegative = Annotated[int, Field(strict=True, ge=0, le=2**31 - 1)]
Percent = Annotated[int, Field(strict=True, ge=0, le=100)]
UInt32 = Annotated[int, Field(strict=True, ge=0, le=2**32 - 1)]
# Envoy's ring-hash limit (RingHashLbConfig: minimum_ring_size <= 8M)
_RING_MAX = 8388608

_MIN_DURATION = 1e-3  # Istio: "MUST BE >=1ms"
_MAGLEV_MAX = 5000011


def _at_least_1ms(path: str, value: float | None) -> None:
    if value is not None and value < _MIN_DURATION:
        raise field_error(path, f"must be at least 1ms, got {value:g}s")


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    i = 2
    while i * i <= n:
        if n % i == 0:
            return False
        i += 1
    return True


class CookieAttribute(ApiModel):
    name: CookieName
    value: CookieText = ""


class HTTPCookie(ApiModel):
    name: CookieName
    path: CookieText = ""
    # Unset: hash the cookie if present, never set one. Set (0s included): Envoy generates
    # the cookie when absent; 0s makes it a session cookie.
    ttl: Duration | None = None
    attributes: list[CookieAttribute] = Field(default_factory=list)


class RingHash(ApiModel):
    minimum_ring_size: Annotated[int, Field(strict=True, ge=0, le=_RING_MAX)] = 0


class MagLev(ApiModel):
    table_size: Annotated[int, Field(strict=True, ge=0)] = 0

    @model_validator(mode="after")
    def _prime(self) -> Self:
        if self.table_size and (self.table_size >= _MAGLEV_MAX or not _is_prime(self.table_size)):
            raise field_error(
                "tableSize", f"must be a prime number below {_MAGLEV_MAX}, got {self.table_size}"
            )
        return self


class ConsistentHashLB(ApiModel):
    http_header_name: MatchHeaderName | None = None
    http_cookie: HTTPCookie | None = None
    use_source_ip: Bool | None = None
    http_query_parameter_name: Annotated[str, Field(min_length=1)] | None = None
    ring_hash: RingHash | None = None
    maglev: MagLev | None = None
    minimum_ring_size: Annotated[int, Field(strict=True, ge=0, le=_RING_MAX)] = 0  # deprecated

    @model_validator(mode="after")
    def _oneofs(self) -> Self:
        keys = [
            k
            for k, v in (
                ("httpHeaderName", self.http_header_name),
                ("httpCookie", self.http_cookie),
                ("useSourceIp", self.use_source_ip or None),
                ("httpQueryParameterName", self.http_query_parameter_name),
            )
            if v is not None
        ]
        if len(keys) > 1:
            raise field_error(keys[1], f"only one hash key may be set, found {', '.join(keys)}")
        if self.ring_hash is not None and self.maglev is not None:
            raise field_error("maglev", "only one of ringHash and maglev may be set")
        return self


class LoadBalancerSettings(ApiModel):
    simple: (
        Literal[
            "UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST"
        ]
        | None
    ) = None
    consistent_hash: ConsistentHashLB | None = None

    @model_validator(mode="after")
    def _one_policy(self) -> Self:
        if self.simple is not None and self.consistent_hash is not None:
            raise field_error("consistentHash", "only one of simple and consistentHash may be set")
        return self


class TcpKeepalive(ApiModel):
    probes: UInt32 = 0
    time: Duration | None = None
    interval: Duration | None = None

    @model_validator(mode="after")
    def _whole_seconds(self) -> Self:
        # Envoy holds keepalive time and interval as uint32 seconds
        for name, value in (("time", self.time), ("interval", self.interval)):
            if value is not None and not 1 <= value <= 2**32 - 1:
                raise field_error(name, f"must be between 1s and {2**32 - 1}s, got {value:g}s")
        return self


class TCPSettings(ApiModel):
    max_connections: NonNegative = 0
    connect_timeout: Duration | None = None
    tcp_keepalive: TcpKeepalive | None = None
    max_connection_duration: Duration | None = None
    idle_timeout: Duration | None = None

    @model_validator(mode="after")
    def _durations(self) -> Self:
        _at_least_1ms("connectTimeout", self.connect_timeout)
        _at_least_1ms("maxConnectionDuration", self.max_connection_duration)
        return self


class HTTPSettings(ApiModel):
    http1_max_pending_requests: NonNegative = 0
    http2_max_requests: NonNegative = 0
    max_requests_per_connection: NonNegative = 0
    max_retries: NonNegative = 0
    idle_timeout: Duration | None = None
    h2_upgrade_policy: Literal["DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"] = "DEFAULT"
    max_concurrent_streams: NonNegative = 0


class ConnectionPoolSettings(ApiModel):
    tcp: TCPSettings | None = None
    http: HTTPSettings | None = None


class OutlierDetection(ApiModel):
    split_external_local_origin_errors: Bool = False
    consecutive_local_origin_failures: UInt32 | None = None
    consecutive_gateway_errors: UInt32 | None = None
    consecutive_5xx_errors: UInt32 | None = Field(default=None, alias="consecutive5xxErrors")
    interval: Duration | None = None
    base_ejection_time: Duration | None = None
    max_ejection_percent: Percent = 0
    min_health_percent: Percent = 0

    @model_validator(mode="after")
    def _durations(self) -> Self:
        _at_least_1ms("interval", self.interval)
        _at_least_1ms("baseEjectionTime", self.base_ejection_time)
        return self


class RetryBudget(ApiModel):
    percent: Annotated[float, Field(ge=0, le=100)] | None = None  # Istio default: 20
    min_retry_concurrency: UInt32 = 0  # 0: default 3


class PortSelector(ApiModel):
    number: Port


class PortTrafficPolicy(ApiModel):
    port: PortSelector
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None


class TrafficPolicy(ApiModel):
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    port_level_settings: list[PortTrafficPolicy] = Field(default_factory=list)
    retry_budget: RetryBudget | None = None
    tls: ClientTLSSettings | None = None

    def tls_files(self) -> tuple[str, ...]:
        """Files named by `tls` here and in `portLevelSettings` (read by the control plane)."""
        found = [*(self.tls.files() if self.tls else ())]
        for p in self.port_level_settings:
            found += p.tls.files() if p.tls else ()
        return tuple(found)

    def for_port(self, port: int | None) -> TrafficPolicy:
        """This policy with the `portLevelSettings` entry for `port` applied (and dropped)."""
        merged = self.model_copy(update={"port_level_settings": []})
        for p in self.port_level_settings:
            if p.port.number == port:
                # Istio: port-level settings do not inherit; omitted components are defaults.
                return merged.model_copy(
                    update={
                        "load_balancer": p.load_balancer,
                        "connection_pool": p.connection_pool,
                        "outlier_detection": p.outlier_detection,
                        "tls": p.tls,
                    }
                )
        return merged


_COMPONENTS = ("load_balancer", "connection_pool", "outlier_detection", "retry_budget", "tls")


def effective_policy(
    service: TrafficPolicy | None, subset: TrafficPolicy | None, port: int | None
) -> TrafficPolicy | None:
    """The policy of one cluster: service level, then the subset's, each with port overrides."""
    if service is None and subset is None:
        return None
    merged = service.for_port(port) if service is not None else TrafficPolicy()
    if subset is None:
        return merged
    update: dict[str, object] = {
        name: getattr(subset, name) for name in _COMPONENTS if getattr(subset, name) is not None
    }
    for p in subset.port_level_settings:
        if p.port.number == port:
            update |= {
                "load_balancer": p.load_balancer,
                "connection_pool": p.connection_pool,
                "outlier_detection": p.outlier_detection,
                "tls": p.tls,
            }
            break
    return merged.model_copy(update=update)
