"""SMI (Service Mesh Interface, smi-spec.io) kinds shoal reads from files and translates onto
the Istio model (model/smi.py). Implemented: `split.smi-spec.io` TrafficSplit. TrafficTarget
(`access.smi-spec.io`) and HTTPRouteGroup/TCPRoute (`specs.smi-spec.io`) are refused as not
implemented yet."""

SPLIT_GROUP = "split.smi-spec.io"
SPLIT_VERSIONS = ("v1alpha4", "v1alpha3", "v1alpha2", "v1alpha1")
