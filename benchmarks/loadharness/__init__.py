"""Load harness for shoal's control plane: simulated ADS sidecars, a floor server, scenarios.

* `protocol`: one simulated sidecar's xDS behaviour, sans-IO (requests, ACKs, bookkeeping).
* `client`: `Fleet`, N simulated sidecars as grpc.aio streams over a few HTTP/2 connections.
* `floor`: a trivial ADS server fanning pre-serialized responses out, the reference figure.
* `procstat`: RSS and CPU time of a process from /proc; percentiles.
* `scenarios`: the measured scenarios, run against shoal and against the floor.
"""
