"""Fault injection (VirtualService `fault`) as Envoy's HTTP fault filter, configured per route.

The filter sits on the caller's outbound listener with an empty config (it injects nothing
by itself); each route with a `fault` carries an `HTTPFault` in `typed_per_filter_config`,
as Istio does (route.go TranslateFault). Percentages become per-million fractions; a delay
or abort without a percentage applies to no request, as Istio documents.
"""

from __future__ import annotations

from envoy.extensions.filters.common.fault.v3 import fault_pb2 as common_fault_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.type.v3 import percent_pb2

from shoal.api.routepolicies import GRPC_STATUS, HTTPFaultInjection

FAULT_FILTER = "envoy.filters.http.fault"


def fractional(percent: float) -> percent_pb2.FractionalPercent:
    """Istio's Percent (0-100, a double) as a per-million fraction."""
    return percent_pb2.FractionalPercent(
        numerator=int(percent * 10000), denominator=percent_pb2.FractionalPercent.MILLION
    )


def http_fault(fault: HTTPFaultInjection) -> fault_pb2.HTTPFault:
    out = fault_pb2.HTTPFault()
    if fault.delay is not None and fault.delay.fixed_delay is not None:
        delay = common_fault_pb2.FaultDelay()
        delay.fixed_delay.FromNanoseconds(round(fault.delay.fixed_delay * 1e9))
        delay.percentage.CopyFrom(fractional(fault.delay.fraction))
        out.delay.CopyFrom(delay)
    if fault.abort is not None:
        abort = fault_pb2.FaultAbort()
        if fault.abort.percentage is not None:
            abort.percentage.CopyFrom(fractional(fault.abort.percentage.value))
        else:
            abort.percentage.CopyFrom(fractional(0.0))
        if fault.abort.http_status is not None:
            abort.http_status = fault.abort.http_status
        else:
            abort.grpc_status = GRPC_STATUS[fault.abort.grpc_status or "OK"]
        out.abort.CopyFrom(abort)
    return out


def fault_filter_config() -> fault_pb2.HTTPFault:
    """The listener-level config: no fault unless a route says so."""
    return fault_pb2.HTTPFault()
