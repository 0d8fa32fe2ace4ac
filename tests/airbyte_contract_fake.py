"""A contract fake of Airbyte's public API: the documented endpoints the lab's client uses.

This is not Airbyte. It is a contract fake: it holds the documented request and response shapes of
Airbyte 0.63.19's public API (airbyte-platform, tag v0.63.19,
airbyte-api/server-api/src/main/openapi/config.yaml, paths `/public/v1/...`) and nothing more, so the
client (workshop_lab/flow_tools/airbyte_api.py) and the bootstrap are tested against the contract, here, where
the platform's images cannot be pulled. The real platform is tested by the `airbyte_platform` test.

What it enforces, as the spec documents it:
- Auth on every endpoint but /health and /applications/token: basic auth (the compose release's
  proxy) or a bearer token from `POST /applications/token` (client_id, client_secret, grant type).
  Tokens can be revoked (`revoke_tokens()`) to test the client's refresh after a 401.
- Required fields of each request body (SourceCreateRequest: name, workspaceId, configuration;
  ConnectionCreateRequest: sourceId, destinationId; JobCreateRequest: connectionId, jobType; ...),
  the enums (jobType, syncMode, scheduleType, namespaceDefinition, status), and no fields outside
  the schema (a misspelt field is a 400 here, so the client cannot drift from the contract).
- `limit` of list endpoints at most 100; `workspaceIds` filters.
- Jobs go pending -> running -> succeeded, one step per `GET /jobs/{id}`; `fail_next_job()` makes the
  next triggered job end `failed` instead.
"""

from __future__ import annotations

import base64
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

PREFIX = "/api/public/v1"

JOB_TYPES = {"sync", "reset", "refresh", "clear"}
SYNC_MODES = {"full_refresh_overwrite", "full_refresh_append", "incremental_append", "incremental_deduped_history"}
SCHEDULE_TYPES = {"manual", "cron"}
NAMESPACE_DEFINITIONS = {"source", "destination", "custom_format"}
CONNECTION_STATUSES = {"active", "inactive", "deprecated"}
NON_BREAKING = {"ignore", "disable_connection", "propagate_columns", "propagate_fully"}

# Request schemas: required fields and every allowed field.
SOURCE_CREATE = ({"name", "workspaceId", "configuration"}, {"name", "definitionId", "workspaceId", "configuration", "secretId"})
SOURCE_PATCH = (set(), {"name", "workspaceId", "configuration", "secretId"})
DESTINATION_CREATE = ({"name", "workspaceId", "configuration"}, {"name", "definitionId", "workspaceId", "configuration"})
DESTINATION_PATCH = (set(), {"name", "configuration"})
CONNECTION_FIELDS = {"name", "configurations", "schedule", "dataResidency", "namespaceDefinition", "namespaceFormat",
                     "prefix", "nonBreakingSchemaUpdatesBehavior", "status"}
CONNECTION_CREATE = ({"sourceId", "destinationId"}, CONNECTION_FIELDS | {"sourceId", "destinationId"})
CONNECTION_PATCH = (set(), CONNECTION_FIELDS)
WORKSPACE_CREATE = ({"name"}, {"name", "organizationId"})
JOB_CREATE = ({"connectionId", "jobType"}, {"connectionId", "jobType"})
STREAM_FIELDS = {"name", "syncMode", "cursorField", "primaryKey", "selectedFields"}


class ContractViolation(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def check_body(body: Any, schema: tuple[set[str], set[str]], what: str) -> dict[str, Any]:
    required, allowed = schema
    if not isinstance(body, dict):
        raise ContractViolation(400, f"{what}: the body must be a JSON object")
    missing = sorted(required - body.keys())
    if missing:
        raise ContractViolation(400, f"{what}: missing required field(s) {missing}")
    unknown = sorted(body.keys() - allowed)
    if unknown:
        raise ContractViolation(400, f"{what}: field(s) {unknown} are not in the schema")
    return body


def check_enum(value: Any, allowed: set[str], what: str) -> None:
    if value not in allowed:
        raise ContractViolation(400, f"{what}: {value!r} is not one of {sorted(allowed)}")


def check_connection_fields(body: dict[str, Any]) -> None:
    if "schedule" in body:
        check_enum((body["schedule"] or {}).get("scheduleType"), SCHEDULE_TYPES, "schedule.scheduleType")
    if "namespaceDefinition" in body:
        check_enum(body["namespaceDefinition"], NAMESPACE_DEFINITIONS, "namespaceDefinition")
    if "status" in body:
        check_enum(body["status"], CONNECTION_STATUSES, "status")
    if "nonBreakingSchemaUpdatesBehavior" in body:
        check_enum(body["nonBreakingSchemaUpdatesBehavior"], NON_BREAKING, "nonBreakingSchemaUpdatesBehavior")
    for stream in (body.get("configurations") or {}).get("streams", []):
        check_body(stream, ({"name"}, STREAM_FIELDS), "StreamConfiguration")
        if "syncMode" in stream:
            check_enum(stream["syncMode"], SYNC_MODES, f"stream {stream['name']}: syncMode")
        if "cursorField" in stream and not all(isinstance(p, str) for p in stream["cursorField"]):
            raise ContractViolation(400, f"stream {stream['name']}: cursorField is a list of strings")
        if "primaryKey" in stream and not all(isinstance(k, list) for k in stream["primaryKey"]):
            raise ContractViolation(400, f"stream {stream['name']}: primaryKey is a list of lists of strings")


@dataclass
class FakeJob:
    job_id: int
    connection_id: str
    job_type: str
    fail: bool
    status: str = "pending"
    start_time: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    def advance(self) -> None:
        if self.status == "pending":
            self.status = "running"
        elif self.status == "running":
            self.status = "failed" if self.fail else "succeeded"

    def as_api(self) -> dict[str, Any]:
        body = {"jobId": self.job_id, "status": self.status, "jobType": self.job_type,
                "startTime": self.start_time, "connectionId": self.connection_id, "lastUpdatedAt": self.start_time}
        if self.status == "succeeded":
            body.update(duration="PT12S", rowsSynced=1100, bytesSynced=123456)
        return body


class AirbyteContractFake:
    """The contract fake's state and its HTTP server (FastAPI under uvicorn, in a thread, on 127.0.0.1)."""

    def __init__(self, *, username: str = "airbyte", password: str = "password",
                 client_id: str = "lab-client", client_secret: str = "lab-secret", token_seconds: int = 180):
        self.username, self.password = username, password
        self.client_id, self.client_secret = client_id, client_secret
        self.token_seconds = token_seconds
        self.tokens: dict[str, float] = {}  # token -> expiry (time.monotonic)
        self.tokens_issued = 0
        self.workspaces: dict[str, dict[str, Any]] = {}
        self.sources: dict[str, dict[str, Any]] = {}
        self.destinations: dict[str, dict[str, Any]] = {}
        self.connections: dict[str, dict[str, Any]] = {}
        self.jobs: dict[int, FakeJob] = {}
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status)
        self._fail_next = False
        self._lock = threading.Lock()
        # OSS comes with one workspace, made at install.
        default_id = str(uuid.uuid4())
        self.workspaces[default_id] = {"workspaceId": default_id, "name": "Default Workspace", "dataResidency": "auto"}
        self.app = self._build_app()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- knobs for tests --------------------------------------------------------------------
    def fail_next_job(self) -> None:
        self._fail_next = True

    def revoke_tokens(self) -> None:
        """Every bearer token stops working at once (what a server restart or an early expiry does)."""
        self.tokens.clear()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- server -----------------------------------------------------------------------------
    def start(self) -> AirbyteContractFake:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="airbyte-contract-fake", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the Airbyte contract fake did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    @contextmanager
    def running(self) -> Iterator[AirbyteContractFake]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    # -- auth -------------------------------------------------------------------------------
    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                return False
            return (user, password) == (self.username, self.password)
        if scheme.lower() == "bearer":
            expiry = self.tokens.get(value)
            return expiry is not None and time.monotonic() < expiry
        return False

    def _issue_token(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not body.get("client_id") or not body.get("client_secret"):
            raise ContractViolation(400, "ApplicationTokenRequestWithGrant: client_id and client_secret are required")
        grant = body.get("grant-type", body.get("grant_type"))
        if grant != "client_credentials":
            raise ContractViolation(400, "ApplicationTokenRequestWithGrant: grant type must be client_credentials")
        if (body["client_id"], body["client_secret"]) != (self.client_id, self.client_secret):
            raise ContractViolation(401, "invalid client credentials")
        token = secrets.token_urlsafe(24)
        self.tokens[token] = time.monotonic() + self.token_seconds
        self.tokens_issued += 1
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.token_seconds}

    # -- the API ----------------------------------------------------------------------------
    def _build_app(self) -> FastAPI:
        app = FastAPI(title="Airbyte public API contract fake")
        fake = self
        open_paths = {f"{PREFIX}/health", f"{PREFIX}/applications/token"}

        @app.middleware("http")
        async def guard(request: Request, call_next):  # type: ignore[no-untyped-def]
            if request.url.path not in open_paths and not fake._authorized(request):
                response: Response = JSONResponse({"message": "Unauthorized"}, status_code=401)
            else:
                try:
                    response = await call_next(request)
                except ContractViolation as violation:  # raised inside a route
                    response = JSONResponse({"message": violation.message}, status_code=violation.status)
            fake.requests.append((request.method, request.url.path, response.status_code))
            return response

        @app.exception_handler(ContractViolation)
        async def violation(_: Request, exc: ContractViolation) -> JSONResponse:
            return JSONResponse({"message": exc.message, "type": "contract-violation"}, status_code=exc.status)

        def page(items: list[dict[str, Any]], request: Request) -> dict[str, Any]:
            limit = int(request.query_params.get("limit", 20))
            offset = int(request.query_params.get("offset", 0))
            if not 1 <= limit <= 100 or offset < 0:
                raise ContractViolation(400, "limit must be 1..100 and offset >= 0")
            wanted = request.query_params.getlist("workspaceIds")
            wanted_ids = {w for value in wanted for w in value.split(",") if w}
            if wanted_ids:
                items = [item for item in items if item.get("workspaceId") in wanted_ids]
            chunk = items[offset:offset + limit]
            result: dict[str, Any] = {"data": chunk}
            if offset + limit < len(items):
                result["next"] = f"{fake.url}{request.url.path}?limit={limit}&offset={offset + limit}"
            if offset > 0:
                result["previous"] = f"{fake.url}{request.url.path}?limit={limit}&offset={max(0, offset - limit)}"
            return result

        def need_workspace(workspace_id: str) -> None:
            if workspace_id not in fake.workspaces:
                raise ContractViolation(400, f"workspace {workspace_id} does not exist")

        def lookup(table: dict[str, dict[str, Any]], key: str, what: str) -> dict[str, Any]:
            if key not in table:
                raise ContractViolation(404, f"{what} {key} not found")
            return table[key]

        @app.get(f"{PREFIX}/health")
        def health() -> Response:
            return Response(status_code=200)

        @app.post(f"{PREFIX}/applications/token")
        async def token(request: Request) -> dict[str, Any]:
            return fake._issue_token(await request.json())

        # workspaces
        @app.get(f"{PREFIX}/workspaces")
        def list_workspaces(request: Request) -> dict[str, Any]:
            return page(list(fake.workspaces.values()), request)

        @app.post(f"{PREFIX}/workspaces")
        async def create_workspace(request: Request) -> dict[str, Any]:
            body = check_body(await request.json(), WORKSPACE_CREATE, "WorkspaceCreateRequest")
            workspace_id = str(uuid.uuid4())
            fake.workspaces[workspace_id] = {"workspaceId": workspace_id, "name": body["name"], "dataResidency": "auto"}
            return fake.workspaces[workspace_id]

        # sources and destinations: the same shape, different names
        def actor_routes(kind: str, table: dict[str, dict[str, Any]], create: tuple, patch: tuple) -> None:
            id_key, type_key, schema_name = f"{kind}Id", f"{kind}Type", kind.capitalize()

            @app.get(f"{PREFIX}/{kind}s", name=f"list_{kind}s")
            def list_actors(request: Request) -> dict[str, Any]:
                return page(list(table.values()), request)

            @app.post(f"{PREFIX}/{kind}s", name=f"create_{kind}")
            async def create_actor(request: Request) -> dict[str, Any]:
                body = check_body(await request.json(), create, f"{schema_name}CreateRequest")
                need_workspace(body["workspaceId"])
                if not body.get("definitionId") and not (body["configuration"] or {}).get(type_key):
                    raise ContractViolation(400, f"one of configuration.{type_key} or definitionId must be provided")
                actor_id = str(uuid.uuid4())
                table[actor_id] = {id_key: actor_id, "name": body["name"], type_key: body.get("definitionId", ""),
                                   "workspaceId": body["workspaceId"], "configuration": body["configuration"]}
                return table[actor_id]

            @app.get(f"{PREFIX}/{kind}s/{{actor_id}}", name=f"get_{kind}")
            def get_actor(actor_id: str) -> dict[str, Any]:
                return lookup(table, actor_id, kind)

            @app.patch(f"{PREFIX}/{kind}s/{{actor_id}}", name=f"patch_{kind}")
            async def patch_actor(actor_id: str, request: Request) -> dict[str, Any]:
                actor = lookup(table, actor_id, kind)
                body = check_body(await request.json(), patch, f"{schema_name}PatchRequest")
                actor.update({k: v for k, v in body.items() if k in ("name", "configuration")})
                return actor

        actor_routes("source", fake.sources, SOURCE_CREATE, SOURCE_PATCH)
        actor_routes("destination", fake.destinations, DESTINATION_CREATE, DESTINATION_PATCH)

        # connections
        @app.get(f"{PREFIX}/connections")
        def list_connections(request: Request) -> dict[str, Any]:
            return page(list(fake.connections.values()), request)

        @app.post(f"{PREFIX}/connections")
        async def create_connection(request: Request) -> dict[str, Any]:
            body = check_body(await request.json(), CONNECTION_CREATE, "ConnectionCreateRequest")
            check_connection_fields(body)
            source = lookup(fake.sources, body["sourceId"], "source")
            destination = lookup(fake.destinations, body["destinationId"], "destination")
            if source["workspaceId"] != destination["workspaceId"]:
                raise ContractViolation(400, "source and destination are in different workspaces")
            connection_id = str(uuid.uuid4())
            fake.connections[connection_id] = {
                "connectionId": connection_id,
                "name": body.get("name") or f"{source['name']} -> {destination['name']}",
                "sourceId": body["sourceId"],
                "destinationId": body["destinationId"],
                "workspaceId": source["workspaceId"],
                "status": body.get("status", "active"),
                "schedule": body.get("schedule") or {"scheduleType": "manual"},
                "dataResidency": body.get("dataResidency", "auto"),
                "namespaceDefinition": body.get("namespaceDefinition", "destination"),
                "namespaceFormat": body.get("namespaceFormat"),
                "nonBreakingSchemaUpdatesBehavior": body.get("nonBreakingSchemaUpdatesBehavior", "ignore"),
                "configurations": body.get("configurations") or {"streams": []},
            }
            return fake.connections[connection_id]

        @app.get(f"{PREFIX}/connections/{{connection_id}}")
        def get_connection(connection_id: str) -> dict[str, Any]:
            return lookup(fake.connections, connection_id, "connection")

        @app.patch(f"{PREFIX}/connections/{{connection_id}}")
        async def patch_connection(connection_id: str, request: Request) -> dict[str, Any]:
            connection = lookup(fake.connections, connection_id, "connection")
            body = check_body(await request.json(), CONNECTION_PATCH, "ConnectionPatchRequest")
            check_connection_fields(body)
            connection.update(body)
            return connection

        # jobs
        @app.post(f"{PREFIX}/jobs")
        async def create_job(request: Request) -> dict[str, Any]:
            body = check_body(await request.json(), JOB_CREATE, "JobCreateRequest")
            check_enum(body["jobType"], JOB_TYPES, "jobType")
            lookup(fake.connections, body["connectionId"], "connection")
            with fake._lock:
                job = FakeJob(job_id=len(fake.jobs) + 1, connection_id=body["connectionId"], job_type=body["jobType"],
                              fail=fake._fail_next)
                fake._fail_next = False
                fake.jobs[job.job_id] = job
            return job.as_api()

        @app.get(f"{PREFIX}/jobs/{{job_id}}")
        def get_job(job_id: int) -> dict[str, Any]:
            if job_id not in fake.jobs:
                raise ContractViolation(404, f"job {job_id} not found")
            job = fake.jobs[job_id]
            answer = job.as_api()
            job.advance()  # the next poll sees the next status
            return answer

        return app
