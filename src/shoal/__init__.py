"""shoal: a service mesh in Python.

Istio-compatible YAML in, xDS out, real Envoy in the data plane.
"""

__version__ = "0.1.0"
