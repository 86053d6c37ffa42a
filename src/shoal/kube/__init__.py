"""shoal.kube: Kubernetes adapters (DESIGN.md).

Pure translations of Kubernetes objects into the mesh model (`translate*`), the manifests
`shoal install` applies (`manifests*`), the sidecar injection and validation admission
webhooks (`inject*`, `validate`, `webhook`), and, from the Kubernetes source, informers,
leases and identity. Kubernetes objects travel as their JSON form (plain dicts), the shape
every client library and the API server's wire share, so nothing here depends on a client's
typed models.
"""
