"""End-to-end tests: real shoal control plane, real Envoy, real HTTP."""
