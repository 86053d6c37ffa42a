"""Load harness for shoal's control plane: simulated ADS sidecars, a floor server, scenarios.

* `resources`: type URLs; each distinct resource and response parsed once (real protobufs).
* `protocol`: one simulated sidecar's xDS behaviour, sans-IO (requests, ACKs, bookkeeping).
* `client`: `Fleet`, N simulated sidecars as grpc.aio streams over a few HTTP/2 connections.
* `floor`: a trivial ADS server fanning pre-serialized responses out, the reference figure.
* `procstat`: RSS and CPU time of a process from /proc; percentiles.
* `measure`: the matrix cell, options and per-change figures.
* `scenarios`: the scenarios against ``shoal control-plane``; `replay`: the same on the floor.
"""
