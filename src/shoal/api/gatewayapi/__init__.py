"""Gateway API (gateway.networking.k8s.io): models of the kinds shoal reads, their checks and
status conditions.

The models (`gateway`, `httproute`, `grpcroute`, `referencegrant`) validate one document each;
`attach` decides, purely, which Gateway listener or mesh Service each route's parentRef binds
to and whether each backendRef resolves, giving the spec's status conditions (Accepted,
ResolvedRefs with their reasons). model/gatewayapi.py translates what attached onto the Istio
kinds (Gateway, VirtualService) the rest of shoal already serves.
"""

GROUP = "gateway.networking.k8s.io"
# the controllers whose GatewayClasses shoal serves: its own, and Istio's (so Istio users'
# `gatewayClassName: istio` works unchanged)
CONTROLLERS = frozenset({"shoal.dev/gateway-controller", "istio.io/gateway-controller"})
# class names served without a GatewayClass object (Istio installs `istio` by itself)
BUILTIN_CLASSES = frozenset({"shoal", "istio"})
# the label a Gateway's proxies carry (Istio's deployment label; a LocalGateway sets it)
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
# The kind shoal files a Gateway API Gateway under: Istio's Gateway has the bare name, and a
# resource is keyed by its kind (kubectl spells a qualified kind the same way)
GATEWAY_KIND = "Gateway.gateway.networking.k8s.io"
ROUTE_KINDS = ("HTTPRoute", "GRPCRoute")
