"""shoal.sources."""
