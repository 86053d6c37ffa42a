"""shoal.sources: where config and workloads come from (files, local processes, Kubernetes)."""
