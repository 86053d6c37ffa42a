"""shoal.agent: runs one Envoy for one workload (bootstrap, process care, health)."""
