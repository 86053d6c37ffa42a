"""Extract every field of Istio's config API from the `istio/api` protos, as the data file
`fields.json` beside this script (which tests/unit/api/test_istio_fields.py walks).

Not run by the tests: run it by hand against a checkout of github.com/istio/api to refresh
the data, e.g. `python tests/unit/api/istioapi/extract.py /path/to/istio-api`. It reads only
what the field list needs from the proto grammar: messages (nested), fields, `map<,>`,
`repeated`, `oneof` (its fields are fields of the message); enums and options are skipped.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOTS = {
    "VirtualService": "istio.networking.v1alpha3.VirtualService",
    "DestinationRule": "istio.networking.v1alpha3.DestinationRule",
    "Gateway": "istio.networking.v1alpha3.Gateway",
    "ServiceEntry": "istio.networking.v1alpha3.ServiceEntry",
    "WorkloadEntry": "istio.networking.v1alpha3.WorkloadEntry",
    "WorkloadGroup": "istio.networking.v1alpha3.WorkloadGroup",
    "Sidecar": "istio.networking.v1alpha3.Sidecar",
    "AuthorizationPolicy": "istio.security.v1beta1.AuthorizationPolicy",
    "PeerAuthentication": "istio.security.v1beta1.PeerAuthentication",
    "RequestAuthentication": "istio.security.v1beta1.RequestAuthentication",
    "Telemetry": "istio.telemetry.v1alpha1.Telemetry",
}
FILES = [
    "networking/v1alpha3/virtual_service.proto",
    "networking/v1alpha3/destination_rule.proto",
    "networking/v1alpha3/gateway.proto",
    "networking/v1alpha3/service_entry.proto",
    "networking/v1alpha3/workload_entry.proto",
    "networking/v1alpha3/workload_group.proto",
    "networking/v1alpha3/sidecar.proto",
    "security/v1beta1/authorization_policy.proto",
    "security/v1beta1/peer_authentication.proto",
    "security/v1beta1/request_authentication.proto",
    "telemetry/v1alpha1/telemetry.proto",
    "type/v1beta1/selector.proto",
]
_TOKEN = re.compile(r'"[^"]*"|[A-Za-z_][A-Za-z0-9_.]*|\d+|[{}<>\[\](),;=]|\S')


@dataclass
class Message:
    name: str  # fully qualified
    fields: list[tuple[str, str, bool]] = field(default_factory=list)  # (name, type, repeated)


def _tokens(text: str) -> list[str]:
    # line comments first: theirs hold "*/" and "/*" (`prod/*.example.com`)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return _without_oneofs(_TOKEN.findall(text))


def _skip_block(tokens: list[str], i: int) -> int:
    """From a `{` at i, the index after its matching `}`."""
    depth = 0
    while True:
        if tokens[i] == "{":
            depth += 1
        elif tokens[i] == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1


def _parse_message(tokens: list[str], i: int, scope: str, out: dict[str, Message]) -> int:
    name = f"{scope}.{tokens[i + 1]}"
    msg = out.setdefault(name, Message(name))
    i += 3  # message NAME {
    while tokens[i] != "}":
        tok = tokens[i]
        if tok == "message":
            i = _parse_message(tokens, i, name, out)
        elif tok == "enum":
            i = _skip_block(tokens, i + 2)
        elif tok in ("reserved", "option", "extensions"):
            while tokens[i] != ";":
                i += 1
            i += 1
        elif tok == ";":
            i += 1
        else:
            repeated = tok == "repeated"
            if tok in ("repeated", "optional"):
                i += 1
            if tokens[i] == "map":
                # map < K , V > name = N
                value_type = tokens[i + 4]
                ftype, fname = "map:" + value_type, tokens[i + 6]
                i += 7
            else:
                ftype, fname = tokens[i], tokens[i + 1]
                i += 2
            msg.fields.append((fname, ftype, repeated))
            while tokens[i] != ";":
                i = _skip_block(tokens, i) if tokens[i] == "{" else i + 1
            i += 1
    return i + 1


def _without_oneofs(tokens: list[str]) -> list[str]:
    """`oneof NAME { fields }` -> `fields`: a oneof's fields are the message's."""
    out: list[str] = []
    closing: list[bool] = []  # per open brace: whether it is a oneof's
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "oneof":
            closing.append(True)
            i += 3
            continue
        if tok == "{":
            closing.append(False)
        elif tok == "}" and closing.pop():
            i += 1
            continue
        out.append(tok)
        i += 1
    return out


def parse(text: str, out: dict[str, Message]) -> None:
    tokens = _tokens(text)
    package = ""
    i = 0
    while i < len(tokens):
        if tokens[i] == "package":
            package = tokens[i + 1]
            i += 2
        elif tokens[i] == "message":
            i = _parse_message(tokens, i, package, out)
        elif tokens[i] == "enum" or tokens[i] == "service":
            i = _skip_block(tokens, i + 2)
        else:
            i += 1


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _resolve(ftype: str, scope: str, messages: dict[str, Message]) -> str | None:
    parts = scope.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end]) + "." + ftype
        if candidate in messages:
            return candidate
    return ftype if ftype in messages else None


def paths(root: str, messages: dict[str, Message]) -> list[str]:
    out: list[str] = []

    def walk(name: str, prefix: str, seen: tuple[str, ...]) -> None:
        for fname, ftype, repeated in messages[name].fields:
            map_value = ftype.startswith("map:")
            target = _resolve(ftype.removeprefix("map:"), name, messages)
            path = prefix + _camel(fname) + ("[]" if repeated else "") + ("{}" if map_value else "")
            out.append(path)
            if target is not None and target not in seen:
                walk(target, path + ".", (*seen, target))

    walk(root, "", (root,))
    return out


def main(checkout: Path) -> None:
    messages: dict[str, Message] = {}
    for rel in FILES:
        parse((checkout / rel).read_text(encoding="utf-8"), messages)
    git = ["git", "-C", str(checkout), "rev-parse", "HEAD"]
    commit = subprocess.run(git, capture_output=True, text=True, check=True).stdout.strip()
    data = {
        "source": "github.com/istio/api",
        "commit": commit,
        "kinds": {kind: paths(root, messages) for kind, root in ROOTS.items()},
    }
    target = Path(__file__).with_name("fields.json")
    target.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(target, sum(len(v) for v in data["kinds"].values()), "fields")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
