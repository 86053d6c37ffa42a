"""shoal.controlplane."""
