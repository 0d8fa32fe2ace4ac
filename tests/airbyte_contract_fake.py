"""A contract fake of Airbyte's public API, held to Airbyte's own OpenAPI document.

This is not Airbyte. It serves the endpoints the lab's client uses (workshop_lab/flow_tools/airbyte_api.py)
and the bootstrap, here, where the platform's images cannot be pulled; the real platform is tested by
the `airbyte_platform` test. Its shapes are not the lab's reading of Airbyte: every request it
receives and every response it sends is checked against the document Airbyte's server of the
profile's release is generated from, vendored in tests/contracts/ (airbyte-platform v0.63.19; see
tests/contracts/README.md): paths, methods, parameters, request bodies, response schemas.
- A request outside the contract is answered 400 (what Airbyte answers for invalid data) and
  recorded in `contract_violations`: the client broke the contract.
- A response outside the contract is replaced by a 500 and recorded too: the fake broke it.
The tests' fixture fails any test that leaves a violation behind.

Behaviour beyond the schemas, each from Airbyte's sources at the same tag
(airbyte-server/src/main/kotlin/io/airbyte/server/apis/publicapi/):
- `GET /health` answers 200 with the plain-text body `Successful operation` (controllers/HealthController.kt).
- Tokens from `POST /applications/token` live 180 s (controllers/ApplicationsController.kt,
  TOKEN_EXPIRATION_TIME); only client_id and client_secret are read. `revoke_tokens()` makes every
  token stop working at once, to test the client's refresh after a 401.
- Auth on every endpoint but /health and /applications/token (both `security: []` in the
  document): basic auth (the compose release's proxy) or a bearer token.
- One of configuration.sourceType / definitionId must be given (SourceCreateRequest's description).
- Jobs go pending -> running -> succeeded, one step per `GET /jobs/{id}`; `fail_next_job()` makes the
  next triggered job end `failed` instead.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from tests.contracts.airbyte_openapi import PublicApiContract, public_api_contract

PREFIX = "/api/public/v1"
HEALTH_BODY = "Successful operation"  # HealthController.kt: HttpResponse.ok<String?>().body("Successful operation")


class ApiRefusal(Exception):
    """What the server answers to a well-formed request it cannot serve (no such connection, bad secret)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


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
        body = {
            "jobId": self.job_id,
            "status": self.status,
            "jobType": self.job_type,
            "startTime": self.start_time,
            "connectionId": self.connection_id,
            "lastUpdatedAt": self.start_time,
        }
        if self.status == "succeeded":
            body.update(duration="PT12S", rowsSynced=1100, bytesSynced=123456)
        return body


class AirbyteContractFake:
    """The contract fake's state and its HTTP server (FastAPI under uvicorn, in a thread, on 127.0.0.1)."""

    def __init__(
        self,
        *,
        username: str = "airbyte",
        password: str = "password",
        client_id: str = "lab-client",
        client_secret: str = "lab-secret",
        token_seconds: int = 180,
        contract: PublicApiContract | None = None,
    ):
        self.contract = contract or public_api_contract()
        self.contract_violations: list[str] = []  # what broke Airbyte's contract, request or response
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

    def assert_contract_kept(self) -> None:
        """Fail with every violation of Airbyte's contract seen so far (the tests' fixture calls it)."""
        assert not self.contract_violations, "Airbyte's public API contract was broken:\n" + "\n".join(
            self.contract_violations
        )

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

    def _issue_token(self, body: dict[str, Any]) -> dict[str, Any]:
        # The body's shape was checked against ApplicationTokenRequestWithGrant by the middleware;
        # like ApplicationsController.publicGetAccessToken, only the id and the secret are read.
        if (body["client_id"], body["client_secret"]) != (self.client_id, self.client_secret):
            raise ApiRefusal(401, "invalid client credentials")
        token = secrets.token_urlsafe(24)
        self.tokens[token] = time.monotonic() + self.token_seconds
        self.tokens_issued += 1
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.token_seconds}

    async def _checked_response(self, method: str, path: str, response: Response) -> Response:
        """The route's response if it keeps the contract; a 500 naming what it broke if not."""
        body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
        broken = self.contract.response_violations(
            method, path, response.status_code, response.headers.get("content-type", ""), body
        )
        if broken:
            self.contract_violations += [f"response to {method} {path}: {problem}" for problem in broken]
            return JSONResponse(
                {"message": "the contract fake broke the contract: " + "; ".join(broken)}, status_code=500
            )
        return Response(content=body, status_code=response.status_code, headers=dict(response.headers))

    # -- the API ----------------------------------------------------------------------------
    def _build_app(self) -> FastAPI:
        app = FastAPI(title="Airbyte public API contract fake")
        fake = self
        open_paths = {f"{PREFIX}/health", f"{PREFIX}/applications/token"}

        @app.middleware("http")
        async def guard(request: Request, call_next):  # type: ignore[no-untyped-def]
            method, path = request.method, request.url.path
            if path not in open_paths and not fake._authorized(request):  # security runs before validation
                response: Response = JSONResponse({"message": "Unauthorized"}, status_code=401)
                fake.requests.append((method, path, response.status_code))
                return response
            body = await request.body()  # Starlette hands the same bytes on to the route
            broken = fake.contract.request_violations(
                method, path, list(request.query_params.multi_items()), request.headers.get("content-type", ""), body
            )
            if broken:
                fake.contract_violations += [f"request {method} {path}: {problem}" for problem in broken]
                response = JSONResponse({"message": "; ".join(broken), "type": "contract-violation"}, status_code=400)
            else:
                try:
                    response = await call_next(request)
                except ApiRefusal as refusal:  # raised inside a route
                    response = JSONResponse({"message": refusal.message}, status_code=refusal.status)
                response = await fake._checked_response(method, path, response)
            fake.requests.append((method, path, response.status_code))
            return response

        @app.exception_handler(ApiRefusal)
        async def refused(_: Request, exc: ApiRefusal) -> JSONResponse:
            return JSONResponse({"message": exc.message}, status_code=exc.status)

        def page(items: list[dict[str, Any]], request: Request) -> dict[str, Any]:
            # limit's bounds (1..100) and defaults are the contract's, checked by the middleware.
            limit = int(request.query_params.get("limit", 20))
            offset = int(request.query_params.get("offset", 0))
            wanted = request.query_params.getlist("workspaceIds")
            wanted_ids = {w for value in wanted for w in value.split(",") if w}
            if wanted_ids:
                items = [item for item in items if item.get("workspaceId") in wanted_ids]
            chunk = items[offset : offset + limit]
            result: dict[str, Any] = {"data": chunk}
            if offset + limit < len(items):
                result["next"] = f"{fake.url}{request.url.path}?limit={limit}&offset={offset + limit}"
            if offset > 0:
                result["previous"] = f"{fake.url}{request.url.path}?limit={limit}&offset={max(0, offset - limit)}"
            return result

        def need_workspace(workspace_id: str) -> None:
            if workspace_id not in fake.workspaces:
                raise ApiRefusal(400, f"workspace {workspace_id} does not exist")

        def lookup(table: dict[str, dict[str, Any]], key: str, what: str) -> dict[str, Any]:
            if key not in table:
                raise ApiRefusal(404, f"{what} {key} not found")
            return table[key]

        @app.get(f"{PREFIX}/health")
        def health() -> Response:
            return PlainTextResponse(HEALTH_BODY)

        @app.post(f"{PREFIX}/applications/token")
        async def token(request: Request) -> dict[str, Any]:
            # Both media types the document declares: JSON, and the form OAuth clients send.
            raw = await request.body()
            if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                return fake._issue_token(dict(parse_qsl(raw.decode())))
            return fake._issue_token(json.loads(raw))

        # workspaces
        @app.get(f"{PREFIX}/workspaces")
        def list_workspaces(request: Request) -> dict[str, Any]:
            return page(list(fake.workspaces.values()), request)

        @app.post(f"{PREFIX}/workspaces")
        async def create_workspace(request: Request) -> dict[str, Any]:
            body = await request.json()
            workspace_id = str(uuid.uuid4())
            fake.workspaces[workspace_id] = {"workspaceId": workspace_id, "name": body["name"], "dataResidency": "auto"}
            return fake.workspaces[workspace_id]

        # sources and destinations: the same shape, different names
        def actor_routes(kind: str, table: dict[str, dict[str, Any]]) -> None:
            id_key, type_key = f"{kind}Id", f"{kind}Type"

            @app.get(f"{PREFIX}/{kind}s", name=f"list_{kind}s")
            def list_actors(request: Request) -> dict[str, Any]:
                return page(list(table.values()), request)

            @app.post(f"{PREFIX}/{kind}s", name=f"create_{kind}")
            async def create_actor(request: Request) -> dict[str, Any]:
                body = await request.json()
                need_workspace(body["workspaceId"])
                if not body.get("definitionId") and not (body["configuration"] or {}).get(type_key):
                    raise ApiRefusal(400, f"one of configuration.{type_key} or definitionId must be provided")
                actor_id = str(uuid.uuid4())
                table[actor_id] = {
                    id_key: actor_id,
                    "name": body["name"],
                    type_key: body.get("definitionId", ""),
                    "workspaceId": body["workspaceId"],
                    "configuration": body["configuration"],
                }
                return table[actor_id]

            @app.get(f"{PREFIX}/{kind}s/{{actor_id}}", name=f"get_{kind}")
            def get_actor(actor_id: str) -> dict[str, Any]:
                return lookup(table, actor_id, kind)

            @app.patch(f"{PREFIX}/{kind}s/{{actor_id}}", name=f"patch_{kind}")
            async def patch_actor(actor_id: str, request: Request) -> dict[str, Any]:
                actor = lookup(table, actor_id, kind)
                body = await request.json()
                actor.update({k: v for k, v in body.items() if k in ("name", "configuration")})
                return actor

        actor_routes("source", fake.sources)
        actor_routes("destination", fake.destinations)

        # connections
        @app.get(f"{PREFIX}/connections")
        def list_connections(request: Request) -> dict[str, Any]:
            return page(list(fake.connections.values()), request)

        @app.post(f"{PREFIX}/connections")
        async def create_connection(request: Request) -> dict[str, Any]:
            body = await request.json()
            source = lookup(fake.sources, body["sourceId"], "source")
            destination = lookup(fake.destinations, body["destinationId"], "destination")
            if source["workspaceId"] != destination["workspaceId"]:
                raise ApiRefusal(400, "source and destination are in different workspaces")
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
                "nonBreakingSchemaUpdatesBehavior": body.get("nonBreakingSchemaUpdatesBehavior", "ignore"),
                "configurations": body.get("configurations") or {"streams": []},
            }
            if "namespaceFormat" in body:  # a string when present; the contract has no null for it
                fake.connections[connection_id]["namespaceFormat"] = body["namespaceFormat"]
            return fake.connections[connection_id]

        @app.get(f"{PREFIX}/connections/{{connection_id}}")
        def get_connection(connection_id: str) -> dict[str, Any]:
            return lookup(fake.connections, connection_id, "connection")

        @app.patch(f"{PREFIX}/connections/{{connection_id}}")
        async def patch_connection(connection_id: str, request: Request) -> dict[str, Any]:
            connection = lookup(fake.connections, connection_id, "connection")
            body = await request.json()
            connection.update(body)
            return connection

        # jobs
        @app.post(f"{PREFIX}/jobs")
        async def create_job(request: Request) -> dict[str, Any]:
            body = await request.json()
            lookup(fake.connections, body["connectionId"], "connection")
            with fake._lock:
                job = FakeJob(
                    job_id=len(fake.jobs) + 1,
                    connection_id=body["connectionId"],
                    job_type=body["jobType"],
                    fail=fake._fail_next,
                )
                fake._fail_next = False
                fake.jobs[job.job_id] = job
            return job.as_api()

        @app.get(f"{PREFIX}/jobs/{{job_id}}")
        def get_job(job_id: int) -> dict[str, Any]:
            if job_id not in fake.jobs:
                raise ApiRefusal(404, f"job {job_id} not found")
            job = fake.jobs[job_id]
            answer = job.as_api()
            job.advance()  # the next poll sees the next status
            return answer

        return app
