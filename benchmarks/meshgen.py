"""Synthetic meshes as Istio YAML text, so every benchmark starts from what a user writes.

`generate_mesh(S, E, K, V)` returns ``{relative file name: YAML text}`` for S services of E
endpoints each, spread round-robin over K namespaces. Every service gets:

* a STATIC ``ServiceEntry`` (one HTTP port 80; endpoints on 10.x.y.z:8080, labelled
  ``version: v1`` or ``version: v2`` alternately),
* a ``DestinationRule`` with subsets v1 and v2,
* for a fraction V of the services (spread evenly), a ``VirtualService`` splitting 90/10
  between the subsets.

With ``sidecar_scope=True`` every namespace also gets a ``Sidecar`` whose egress is
``./*`` (its proxies see only their own namespace's services), as the scale benchmark's
"with Sidecar scoping" runs use.

Each resource lives in its own file (``<namespace>/<service>-{se,dr,vs}.yaml``), so a
benchmark can edit one VirtualService or one ServiceEntry the way an operator would. With
``one_file=True`` every ServiceEntry is a document of one ``registry.yaml`` instead (an exported
inventory, a ``kubectl get -o yaml`` dump: ~1.1 MB at 1,000 x 10), and an endpoint edit rewrites
that whole file (`registry`). The first namespace is always ``default``: that is where the
benchmark sidecars live.
"""

from __future__ import annotations

from dataclasses import dataclass

SERVICE_PORT = 80
ENDPOINT_PORT = 8080


def namespaces(k: int) -> list[str]:
    """The K namespace names: ``default``, ``ns-1`` ... ``ns-(K-1)``."""
    return ["default", *(f"ns-{i}" for i in range(1, k))]


@dataclass(frozen=True)
class ServiceSpec:
    """Where one generated service lives and what it is called."""

    index: int
    name: str
    namespace: str
    has_vs: bool

    @property
    def host(self) -> str:
        return f"{self.name}.{self.namespace}.svc.cluster.local"

    def file(self, kind: str) -> str:
        """The file of this service's ``se``, ``dr`` or ``vs``."""
        return f"{self.namespace}/{self.name}-{kind}.yaml"


def services(s: int, k: int = 1, v: float = 0.5) -> list[ServiceSpec]:
    """The S services of a mesh: round-robin over K namespaces, a VirtualService for a
    fraction V of them (every 1/V-th service, so they too are spread over namespaces)."""
    names = namespaces(k)
    with_vs = round(s * v)
    out = []
    for i in range(s):
        # i*with_vs//s steps up exactly with_vs times over range(s): evenly spread
        has_vs = with_vs > 0 and ((i + 1) * with_vs) // s != (i * with_vs) // s
        out.append(ServiceSpec(i, f"svc-{i}", names[i % k], has_vs))
    return out


def endpoint_address(service: int, endpoint: int) -> str:
    """A unique 10.x.y.z address for endpoint ``endpoint`` of service ``service``."""
    n = service * 256 + endpoint  # up to 256 endpoints per service
    return f"10.{(n >> 16) & 0xFF}.{(n >> 8) & 0xFF}.{n & 0xFF}"


def service_entry(svc: ServiceSpec, e: int, port: int = ENDPOINT_PORT) -> str:
    """A STATIC ServiceEntry with ``e`` endpoints, alternately labelled v1 and v2."""
    endpoints = "".join(
        f"""
  - address: {endpoint_address(svc.index, j)}
    ports:
      http: {port}
    labels:
      app: {svc.name}
      version: v{1 + j % 2}"""
        for j in range(e)
    )
    return f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: {svc.name}
  namespace: {svc.namespace}
spec:
  hosts:
  - {svc.host}
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - number: {SERVICE_PORT}
    name: http
    protocol: HTTP
  endpoints:{endpoints}
"""


def destination_rule(svc: ServiceSpec) -> str:
    """Subsets v1 and v2 by the ``version`` label."""
    return f"""apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: {svc.name}
  namespace: {svc.namespace}
spec:
  host: {svc.host}
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
"""


def virtual_service(svc: ServiceSpec, v1: int = 90, v2: int = 10) -> str:
    """A weighted split between the subsets (90/10 unless told otherwise)."""
    return f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: {svc.name}
  namespace: {svc.namespace}
spec:
  hosts:
  - {svc.host}
  http:
  - name: split
    route:
    - destination:
        host: {svc.host}
        subset: v1
        port:
          number: {SERVICE_PORT}
      weight: {v1}
    - destination:
        host: {svc.host}
        subset: v2
        port:
          number: {SERVICE_PORT}
      weight: {v2}
"""


def sidecar_egress(namespace: str) -> str:
    """A namespace-wide ``Sidecar``: its proxies' egress is their own namespace only."""
    return f"""apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: {namespace}
spec:
  egress:
  - hosts:
    - "./*"
"""


REGISTRY_FILE = "registry.yaml"


def registry(entries: list[str]) -> str:
    """ServiceEntry documents as the one file of the one-file layout."""
    return "---\n".join(entries)


def generate_mesh(
    s: int,
    e: int = 10,
    k: int = 1,
    v: float = 0.5,
    *,
    sidecar_scope: bool = False,
    one_file: bool = False,
) -> dict[str, str]:
    """The whole mesh as ``{file name: YAML text}`` (see the module docstring)."""
    files: dict[str, str] = {}
    entries: list[str] = []
    for svc in services(s, k, v):
        if one_file:
            entries.append(service_entry(svc, e))
        else:
            files[svc.file("se")] = service_entry(svc, e)
        files[svc.file("dr")] = destination_rule(svc)
        if svc.has_vs:
            files[svc.file("vs")] = virtual_service(svc)
    if sidecar_scope:
        for ns in namespaces(k):
            files[f"{ns}/sidecar.yaml"] = sidecar_egress(ns)
    if one_file:
        files[REGISTRY_FILE] = registry(entries)
    return files


def mesh_size(files: dict[str, str]) -> str:
    """A one-line description: files, documents, bytes."""
    docs = sum(text.count("\nkind: ") for text in files.values())
    size = sum(len(text) for text in files.values())
    return f"{len(files)} files, {docs} resources, {size / 1e6:.1f} MB of YAML"
