"""Local files named by config: DestinationRule `tls` certificates and keys, JWKS files.

Generation is pure, so the control plane reads these here and passes their contents in the
snapshot (`MeshSnapshot.files`), keyed by the reference exactly as written in the YAML (a
path, or a `file:` jwksUri). Relative paths are relative to the config directory. A file
that cannot be read is left out and logged; generation then refuses to use the setting
rather than push what Envoy would reject. Files are re-read with every config change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from shoal.api import Resource
from shoal.api.destinationrule import DestinationRuleSpec
from shoal.api.requestauthentication import RequestAuthenticationSpec

log = logging.getLogger("shoal.sources")


def references(resources: Iterable[Resource]) -> dict[str, str]:
    """Reference as written -> file path, for every file the config names."""
    out: dict[str, str] = {}
    for res in resources:
        spec = res.spec
        if isinstance(spec, DestinationRuleSpec):
            out.update({p: p for p in spec.tls_files()})
        elif isinstance(spec, RequestAuthenticationSpec):
            for rule in spec.jwt_rules:
                path = rule.jwks_file
                if path is not None:
                    out[rule.jwks_uri] = path
    return out


def read_policy_files(root: Path, resources: Iterable[Resource]) -> dict[str, str]:
    """The contents of every file the config names (see module doc), by reference."""
    found: dict[str, str] = {}
    for ref, path in sorted(references(resources).items()):
        target = Path(path) if Path(path).is_absolute() else root / path
        try:
            found[ref] = target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            log.error("%s: cannot read %s: %s", ref, target, err)
    return found
