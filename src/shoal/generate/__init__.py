"""shoal.generate."""
