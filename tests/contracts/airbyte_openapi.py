"""Airbyte's own contract, as a checker: does a request or a response match the vendored OpenAPI document?

The contract fake (tests/airbyte_contract_fake.py) runs every request it receives and every response
it sends through `PublicApiContract`, so the lab's client is tested against Airbyte's published
document (airbyte-public-api-0.63.19.yaml beside this file), not against the lab's reading of it.

What is checked, for each call:
- the path and the method are an operation of the document (after the servers' `/api` prefix);
- path and query parameters: declared, typed (a query string is parsed as the schema's type),
  required ones present, bounds such as `limit` 1..100;
- the request body: present when the operation requires one, of a declared media type, valid
  against its schema;
- the response: a 2xx status the operation declares, and when that response declares content, a
  declared media type and a body valid against its schema. Error statuses are not checked: the
  document lists few of them and no error bodies.

Two deliberate tightenings of the document, both said in every message they cause:
- Objects are closed: a field that is neither a property nor a required name of its schema is a
  violation (OpenAPI leaves objects open). A misspelt field would otherwise pass here and be dropped
  by the real server; a fake that answers with undocumented fields would teach the client to lean on
  them. Schemas without `properties` (connector configurations) stay open.
- `format: UUID` is read as `uuid` (the document spells it both ways; both name the same thing).
OpenAPI 3.0's `nullable` is honoured (the 0.63.19 document does not use it).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import yaml
from jsonschema import Draft7Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

CONTRACTS_DIR = Path(__file__).resolve().parent
AIRBYTE_VERSION = "0.63.19"
DOCUMENT = CONTRACTS_DIR / f"airbyte-public-api-{AIRBYTE_VERSION}.yaml"
BASE_PATH = "/api"  # the document's servers: https://cloud.airbyte.com/api, http://localhost:8000/api
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
URI = "urn:airbyte-public-api"


def _pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def _as_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema objects -> JSON Schema (draft 7), closed objects, `UUID` -> `uuid`."""
    if isinstance(node, list):
        return [_as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _as_json_schema(value) for key, value in node.items()}
    if isinstance(out.get("format"), str):
        out["format"] = out["format"].lower()
    if out.pop("nullable", False) is True and "type" in out:
        out["type"] = [out["type"], "null"]
    properties = out.get("properties")
    if isinstance(properties, dict) and "additionalProperties" not in out and "$ref" not in out:
        allowed = sorted(set(properties) | set(out.get("required") or []))
        out["propertyNames"] = {"enum": allowed}
    return out


@dataclass(frozen=True)
class Operation:
    method: str
    template: str  # as in the document, e.g. /public/v1/jobs/{jobId}
    pointer: str  # JSON pointer to the operation object inside the document
    spec: dict[str, Any]
    parameters: tuple[dict[str, Any], ...]

    @property
    def name(self) -> str:
        return f"{self.method.upper()} {self.template} ({self.spec.get('operationId', '?')})"


class PublicApiContract:
    """The vendored document, loaded once; `request_violations` / `response_violations` check one call."""

    def __init__(self, document_path: Path = DOCUMENT):
        self.document_path = document_path
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's: several times faster here
        self.document: dict[str, Any] = yaml.load(document_path.read_text(), Loader=loader)
        self.schema_document = _as_json_schema(self.document)
        self.registry = Registry().with_resource(
            URI, Resource.from_contents(self.schema_document, default_specification=DRAFT7)
        )

    @cached_property
    def operations(self) -> list[tuple[re.Pattern[str], Operation]]:
        found = []
        for template, item in self.document["paths"].items():
            shared = item.get("parameters", [])
            for method in METHODS:
                if method not in item:
                    continue
                spec = item[method]
                own = spec.get("parameters", [])
                names = {(p["name"], p["in"]) for p in own}
                parameters = tuple(own) + tuple(p for p in shared if (p["name"], p["in"]) not in names)
                regex = re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")
                found.append(
                    (regex, Operation(method, template, "#/" + _pointer("paths", template, method), spec, parameters))
                )
        # Literal paths before templated ones: /sources/initiateOAuth is not /sources/{sourceId}.
        found.sort(key=lambda pair: pair[1].template.count("{"))
        return found

    def find(self, method: str, path: str) -> tuple[Operation | None, dict[str, str], str]:
        """The operation for `method path` (path as sent, with /api), its path parameters, or why none."""
        if not path.startswith(BASE_PATH + "/"):
            return None, {}, f"{path} is outside the API's base path {BASE_PATH}"
        relative = path[len(BASE_PATH) :]
        methods_here = []
        for regex, operation in self.operations:
            match = regex.match(relative)
            if match:
                if operation.method == method.lower():
                    return operation, match.groupdict(), ""
                methods_here.append(operation.method.upper())
        if methods_here:
            return None, {}, f"{method} {relative}: the contract has only {sorted(set(methods_here))} there"
        return None, {}, f"{method} {relative}: no such path in Airbyte's public API {AIRBYTE_VERSION}"

    # -- checking values ------------------------------------------------------------------------
    def _errors(self, schema_pointer: str, value: Any, where: str) -> list[str]:
        validator = Draft7Validator(
            {"$ref": f"{URI}{schema_pointer}"}, registry=self.registry, format_checker=FormatChecker()
        )
        problems = []
        for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
            at = "/".join(str(p) for p in error.absolute_path)
            message = error.message
            if error.validator == "propertyNames":
                message += " (a field outside its schema: objects are closed here, see tests/contracts/README.md)"
            problems.append(f"{where}{'/' + at if at else ''}: {message}")
        return problems

    def _resolved(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            _, _, kind, name = schema["$ref"].split("/")
            schema = self.document["components"][kind][name]
        return schema

    def _parse_parameter(self, raw: list[str], schema: dict[str, Any]) -> Any:
        """A query or path value as its schema's type (form style, exploded arrays, as OpenAPI defaults)."""
        schema = self._resolved(schema)
        kind = schema.get("type")
        if kind == "array":
            items = [item for value in raw for item in value.split(",")]
            return [self._parse_parameter([item], schema.get("items", {})) for item in items]
        value = raw[-1]
        try:
            if kind == "integer":
                return int(value)
            if kind == "number":
                return float(value)
        except ValueError:
            return value  # left as a string: the type check reports it
        if kind == "boolean":
            return {"true": True, "false": False}.get(value, value)
        return value

    # -- one request, one response ----------------------------------------------------------------
    def request_violations(
        self, method: str, path: str, query: list[tuple[str, str]], content_type: str, body: bytes
    ) -> list[str]:
        operation, path_values, why = self.find(method, path)
        if operation is None:
            return [why]
        problems: list[str] = []
        declared = {(p["name"], p["in"]) for p in operation.parameters}
        for name in sorted({name for name, _ in query} - {n for n, where in declared if where == "query"}):
            problems.append(f"query parameter {name!r} is not declared by {operation.name}")
        for parameter in operation.parameters:
            name, where = parameter["name"], parameter["in"]
            raw = (
                ([path_values[name]] if name in path_values else [])
                if where == "path"
                else [value for key, value in query if key == name]
                if where == "query"
                else []
            )
            if where not in ("path", "query"):
                continue  # headers and cookies: nothing the client sets
            if not raw:
                if parameter.get("required") or where == "path":
                    problems.append(f"{where} parameter {name!r} is required by {operation.name}")
                continue
            value = self._parse_parameter(raw, parameter.get("schema", {}))
            problems += self._errors(self._parameter_pointer(operation, parameter), value, f"{where} parameter {name}")
        problems += self._body_violations(operation, content_type, body)
        return problems

    def _parameter_pointer(self, operation: Operation, parameter: dict[str, Any]) -> str:
        own = operation.spec.get("parameters", [])
        if parameter in own:
            return f"{operation.pointer}/parameters/{own.index(parameter)}/schema"
        shared = self.document["paths"][operation.template]["parameters"]
        return "#/" + _pointer("paths", operation.template, "parameters") + f"/{shared.index(parameter)}/schema"

    def _body_violations(self, operation: Operation, content_type: str, body: bytes) -> list[str]:
        request_body = operation.spec.get("requestBody")
        if request_body is None:
            return [f"{operation.name} takes no request body, got {len(body)} bytes"] if body else []
        if not body:
            return [f"{operation.name} requires a request body"] if request_body.get("required") else []
        media = content_type.split(";")[0].strip().lower()
        if media not in request_body["content"]:
            return [f"{operation.name}: request media type {media!r} is not one of {sorted(request_body['content'])}"]
        try:
            value = json.loads(body) if media == "application/json" else dict(parse_qsl(body.decode()))
        except ValueError as error:
            return [f"{operation.name}: the request body is not {media}: {error}"]
        pointer = f"{operation.pointer}/requestBody/content/{_pointer(media)}/schema"
        return self._errors(pointer, value, f"{operation.name} request body")

    def response_violations(self, method: str, path: str, status: int, content_type: str, body: bytes) -> list[str]:
        operation, _, why = self.find(method, path)
        if operation is None:
            return [why]
        if status >= 400:
            return []
        responses = operation.spec.get("responses", {})
        declared = responses.get(str(status))
        if declared is None:
            return [f"{operation.name} answered HTTP {status}; the contract declares {sorted(responses)}"]
        content = declared.get("content")
        if not content:
            return []  # e.g. /health: a 200 with no declared body (the real server sends plain text)
        media = content_type.split(";")[0].strip().lower()
        if media not in content:
            return [f"{operation.name} HTTP {status}: response media type {media!r} is not one of {sorted(content)}"]
        if media != "application/json" or "schema" not in content[media]:
            return []
        try:
            value = json.loads(body)
        except ValueError as error:
            return [f"{operation.name} HTTP {status}: the response body is not JSON: {error}"]
        pointer = f"{operation.pointer}/responses/{status}/content/{_pointer(media)}/schema"
        return self._errors(pointer, value, f"{operation.name} response")


@cache
def public_api_contract() -> PublicApiContract:
    """The vendored document, parsed once per process (every contract fake shares it)."""
    return PublicApiContract()
