"""Names shared by the manifests, the injector and the control plane in a cluster.

The control plane's Service and ServiceAccount are the names its CA certificate already
carries (`shoal.ca.identity.CONTROL_PLANE*`), so proxies and the API server verify it
without extra configuration.
"""

from __future__ import annotations

from shoal import __version__

NAMESPACE = "shoal-system"
CONTROL_PLANE = "shoal-control-plane"  # Deployment, Service, ServiceAccount, ClusterRole
SERVICE_DNS = f"{CONTROL_PLANE}.{NAMESPACE}.svc"
DEFAULT_IMAGE = f"shoal:{__version__}"

XDS_PORT = 15010  # plaintext xDS
XDS_TLS_PORT = 15012  # xDS and the CA over TLS, token-authenticated
ADMIN_PORT = 15014  # admin API and metrics
WEBHOOK_PORT = 15017  # admission webhooks (HTTPS); the Service exposes it on 443 as Istio does

INJECT_PATH = "/inject"
VALIDATE_PATH = "/validate"
MUTATING_WEBHOOK = "istio-sidecar-injector"
VALIDATING_WEBHOOK = "istio-validator"

ROOT_CERT_CONFIGMAP = "istio-ca-root-cert"  # in every namespace, written by the leader
TOKEN_AUDIENCE = "istio-ca"  # Istio's default audience for the projected token
