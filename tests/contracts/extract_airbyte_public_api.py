"""Cut Airbyte's public-API contract out of the platform's OpenAPI document, for the contract tests.

    git -C airbyte-platform show v0.63.19:airbyte-api/server-api/src/main/openapi/config.yaml > config.yaml
    .venv/bin/python tests/contracts/extract_airbyte_public_api.py config.yaml v0.63.19 <commit> \
        > tests/contracts/airbyte-public-api-0.63.19.yaml

Airbyte's server of that release generates its public API (`/api/public/v1/...`) from this one file
(airbyte-api/public-api/build.gradle.kts: `inputSpec = .../server-api/src/main/openapi/config.yaml`),
which also holds the internal Config API. This keeps the document's own `openapi`, `info` and
`servers`, every path under `/public/v1/`, and each component those paths reference, directly or
through other components; values are copied unchanged (only the YAML layout is PyYAML's).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import yaml

UPSTREAM_FILE = "airbyte-api/server-api/src/main/openapi/config.yaml"
PUBLIC_PREFIX = "/public/v1/"


def referenced(node: Any, components: dict[str, dict[str, Any]], seen: set[tuple[str, str]]) -> None:
    """Add to `seen` every (kind, name) of `#/components/<kind>/<name>` reachable from `node`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                _, _, kind, name = value.split("/")
                if (kind, name) not in seen:
                    seen.add((kind, name))
                    referenced(components[kind][name], components, seen)
            else:
                referenced(value, components, seen)
    elif isinstance(node, list):
        for value in node:
            referenced(value, components, seen)


def extract(document: dict[str, Any]) -> dict[str, Any]:
    paths = {path: item for path, item in document["paths"].items() if path.startswith(PUBLIC_PREFIX)}
    seen: set[tuple[str, str]] = set()
    referenced(paths, document["components"], seen)
    components: dict[str, dict[str, Any]] = {"securitySchemes": document["components"]["securitySchemes"]}
    for kind, name in sorted(seen):
        components.setdefault(kind, {})[name] = document["components"][kind][name]
    return {
        "openapi": document["openapi"],
        "info": document["info"],
        "servers": document["servers"],
        "security": document.get("security", []),
        "paths": paths,
        "components": components,
    }


def main(argv: list[str]) -> int:
    source, tag, commit = Path(argv[0]), argv[1], argv[2]
    raw = source.read_bytes()
    contract = extract(yaml.safe_load(raw))
    referenced_count = sum(len(v) for k, v in contract["components"].items() if k != "securitySchemes")
    header = [
        f"# Airbyte's public API ({PUBLIC_PREFIX}...), as airbyte-platform {tag} defines it. Not hand-written:",
        "# cut by tests/contracts/extract_airbyte_public_api.py (README.md beside this file) from",
        f"#   https://github.com/airbytehq/airbyte-platform/blob/{tag}/{UPSTREAM_FILE}",
        f"#   tag {tag}, commit {commit}",
        f"#   sha256 of that file: {hashlib.sha256(raw).hexdigest()}",
        f"# {len(contract['paths'])} paths under {PUBLIC_PREFIX}; {referenced_count} components they reference.",
        "# Paths are relative to the servers' `.../api`: the lab's client calls http://<host>:8000/api/public/v1/...",
    ]
    sys.stdout.write("\n".join(header) + "\n")
    sys.stdout.write(yaml.safe_dump(contract, sort_keys=False, allow_unicode=True, width=120))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
