"""shoal.runtime: `shoal up` — workloads and their sidecars as local processes."""
