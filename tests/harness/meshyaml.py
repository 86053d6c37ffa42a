"""The `shoal up` mesh YAML that the e2e tests write: LocalWorkloads of the sample service.

Most e2e meshes are the same few lines per workload (one HTTP port 80, `app`/`version`
labels, the sample service as the command) with a different name, replica count, service
account or environment. One builder keeps them alike, so a change to the LocalWorkload kind
is made here once, and a test shows only what is particular to it.
"""

from __future__ import annotations

from collections.abc import Mapping

SAMPLE_COMMAND = '["python", "-m", "shoal.samples.service"]'


def local_workload(
    name: str,
    *,
    service: str | None = None,
    version: str = "v1",
    replicas: int | str | None = 1,
    service_account: str | None = None,
    env: Mapping[str, str] | None = None,
    namespace: str = "default",
) -> str:
    """One LocalWorkload document running the sample service. `service` defaults to `name`;
    `replicas` may be a placeholder string a test substitutes later; None leaves it out
    (the kind's default, 1)."""
    service = service or name
    lines = [
        "apiVersion: shoal.dev/v1alpha1",
        "kind: LocalWorkload",
        f"metadata: {{name: {name}, namespace: {namespace}}}",
        "spec:",
        f"  service: {service}",
        "  ports: [{number: 80, name: http, protocol: HTTP}]",
        f"  labels: {{app: {service}, version: {version}}}",
    ]
    if service_account is not None:
        lines.append(f"  serviceAccount: {service_account}")
    if replicas is not None:
        lines.append(f"  replicas: {replicas}")
    lines.append(f"  command: {SAMPLE_COMMAND}")
    if env:
        pairs = ", ".join(f'{k}: "{v}"' for k, v in env.items())
        lines.append(f"  env: {{{pairs}}}")
    return "\n".join(lines) + "\n"


def documents(*docs: str) -> str:
    """YAML documents joined into one file."""
    return "---\n".join(doc if doc.endswith("\n") else doc + "\n" for doc in docs)


def backend_and_client(*, backends: int = 2, accounts: bool = False) -> str:
    """The two-service mesh many tests use: `backend` (`backends` replicas) and one
    `client`, each with a service account named after it when `accounts` (for --secure)."""
    return documents(
        local_workload(
            "backend", replicas=backends, service_account="backend" if accounts else None
        ),
        local_workload("client", replicas=1, service_account="client" if accounts else None),
    )
