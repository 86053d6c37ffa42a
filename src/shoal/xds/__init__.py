"""shoal.xds."""
