"""Durations as Istio writes them, for the api's models (shoal.common.duration has the code).

Kept so `from shoal.api.duration import Duration` goes on working in the api's modules.
"""

from shoal.common.duration import MAX_SECONDS, Duration, format_duration, parse_duration

__all__ = ["MAX_SECONDS", "Duration", "format_duration", "parse_duration"]
