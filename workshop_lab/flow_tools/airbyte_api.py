"""A small typed client for Airbyte's public API (`/api/public/v1/...`), on httpx.

Why not prefect-airbyte: its 0.3.2 (the last release) does not import on Prefect 3, and it spoke
Airbyte's old Config API. This client speaks the public API of the platform the lab runs
(airbyte/platform/compose.yaml, Airbyte 0.63.19).

How it is held to Airbyte's contract, not to the lab's reading of it: the tests run it against a
contract fake (tests/airbyte_contract_fake.py) that checks every request it receives and every
response it sends against Airbyte's own OpenAPI document for that release, vendored in
tests/contracts/airbyte-public-api-0.63.19.yaml (cut from airbyte-platform v0.63.19,
airbyte-api/server-api/src/main/openapi/config.yaml, the file that release's server generates its
public API from; tests/contracts/README.md): paths, methods, parameters, bodies, response schemas.

Why this and not the official SDK (`airbyte-api` on PyPI): the SDK is generated from the newest
Cloud API, not from 0.63.19's (PyAirbyte's lock pins 0.53.0, PyPI has 1.x), so adopting it would
check the client against a different contract than the platform the profile runs; it would be a new
dependency of every flow process (a re-lock) for six calls; and it would still need a fake to test
against here, one that nothing would hold to Airbyte's document. The vendored document checks the
calls this client makes against the exact release, with the tools already locked (jsonschema).

Two ways to authenticate, the two ways Airbyte is installed:
- Basic auth (the docker compose release): the proxy's user and password,
  AIRBYTE_USERNAME / AIRBYTE_PASSWORD (upstream's defaults: airbyte / password).
- Client credentials (installs made with `abctl`, and Airbyte Cloud): AIRBYTE_CLIENT_ID /
  AIRBYTE_CLIENT_SECRET are exchanged at `POST /api/public/v1/applications/token` for a bearer
  token that expires after minutes; the client fetches a new one before it expires and once more
  when the server answers 401. `abctl local credentials` prints the id and secret.

    with AirbyteClient.from_env() as airbyte:
        job = airbyte.trigger_sync(connection_id)
        airbyte.wait_for_job(job.job_id, timeout=1800)
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

API_PREFIX = "/api/public/v1"
TOKEN_PATH = f"{API_PREFIX}/applications/token"
DEFAULT_URL = "http://127.0.0.1:8000"
PAGE_SIZE = 100  # the list endpoints' documented maximum `limit`

# JobStatusEnum: pending, running, incomplete, failed, succeeded, cancelled. `incomplete` means an
# attempt failed and Airbyte will try again: not final.
TERMINAL_JOB_STATUSES = frozenset({"succeeded", "failed", "cancelled"})

START_PROFILE_HINT = (
    "start the platform with `docker compose --profile airbyte up --wait` (docs/airbyte-platform.md), "
    "or point AIRBYTE_URL at a running Airbyte"
)


# ---------------------------------------------------------------------------------------------
# Errors: each says what went wrong and what to do next.
# ---------------------------------------------------------------------------------------------
class AirbyteError(RuntimeError):
    """Anything that went wrong talking to Airbyte."""


class AirbyteUnreachable(AirbyteError):
    """Nothing answers at AIRBYTE_URL (connection refused, DNS, timeout)."""


class AirbyteAuthError(AirbyteError):
    """Airbyte refused the credentials (401/403)."""


class AirbyteApiError(AirbyteError):
    """Airbyte answered with an error status."""

    def __init__(self, message: str, status_code: int, body: str):
        super().__init__(message)
        self.status_code = status_code
        self.body = body


class AirbyteJobError(AirbyteError):
    """A job ended without succeeding (failed, cancelled) or did not end in time."""

    def __init__(self, message: str, job_id: int, status: str):
        super().__init__(message)
        self.job_id = job_id
        self.status = status


# ---------------------------------------------------------------------------------------------
# What the API returns, as typed records. Field names follow the OpenAPI schemas
# (WorkspaceResponse, SourceResponse, DestinationResponse, ConnectionResponse, JobResponse);
# `raw` keeps the whole JSON object for anything not modelled here.
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Workspace:
    workspace_id: str
    name: str
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Workspace:
        return cls(workspace_id=data["workspaceId"], name=data["name"], raw=data)


@dataclass(frozen=True)
class Source:
    source_id: str
    name: str
    source_type: str
    workspace_id: str
    configuration: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Source:
        return cls(
            source_id=data["sourceId"],
            name=data["name"],
            source_type=data.get("sourceType", ""),
            workspace_id=data["workspaceId"],
            configuration=data.get("configuration") or {},
        )


@dataclass(frozen=True)
class Destination:
    destination_id: str
    name: str
    destination_type: str
    workspace_id: str
    configuration: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Destination:
        return cls(
            destination_id=data["destinationId"],
            name=data["name"],
            destination_type=data.get("destinationType", ""),
            workspace_id=data["workspaceId"],
            configuration=data.get("configuration") or {},
        )


@dataclass(frozen=True)
class Connection:
    connection_id: str
    name: str
    source_id: str
    destination_id: str
    workspace_id: str
    status: str
    schedule_type: str
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Connection:
        return cls(
            connection_id=data["connectionId"],
            name=data["name"],
            source_id=data["sourceId"],
            destination_id=data["destinationId"],
            workspace_id=data["workspaceId"],
            status=data.get("status", ""),
            schedule_type=(data.get("schedule") or {}).get("scheduleType", ""),
            raw=data,
        )


@dataclass(frozen=True)
class Job:
    job_id: int
    status: str
    job_type: str
    connection_id: str
    start_time: str | None = None
    last_updated_at: str | None = None
    duration: str | None = None  # ISO 8601, e.g. PT1M12S
    rows_synced: int | None = None
    bytes_synced: int | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_JOB_STATUSES

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Job:
        return cls(
            job_id=int(data["jobId"]),
            status=data["status"],
            job_type=data["jobType"],
            connection_id=data.get("connectionId", ""),
            start_time=data.get("startTime"),
            last_updated_at=data.get("lastUpdatedAt"),
            duration=data.get("duration"),
            rows_synced=data.get("rowsSynced"),
            bytes_synced=data.get("bytesSynced"),
        )


# ---------------------------------------------------------------------------------------------
# Settings and authentication.
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AirbyteSettings:
    """Where Airbyte is and how to log in; read from the environment by `from_env`."""

    url: str = DEFAULT_URL
    username: str = "airbyte"
    password: str = "password"
    client_id: str = ""
    client_secret: str = ""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> AirbyteSettings:
        env = os.environ if environ is None else environ
        return cls(
            url=env.get("AIRBYTE_URL") or DEFAULT_URL,
            username=env.get("AIRBYTE_USERNAME", "airbyte"),
            password=env.get("AIRBYTE_PASSWORD", "password"),
            client_id=env.get("AIRBYTE_CLIENT_ID", ""),
            client_secret=env.get("AIRBYTE_CLIENT_SECRET", ""),
        )

    @property
    def uses_client_credentials(self) -> bool:
        return bool(self.client_id and self.client_secret)

    def auth(self) -> httpx.Auth | None:
        if self.uses_client_credentials:
            return ClientCredentialsAuth(self.url, self.client_id, self.client_secret)
        if self.username:
            return httpx.BasicAuth(self.username, self.password)
        return None  # basic auth turned off on the proxy (BASIC_AUTH_USERNAME empty)


class ClientCredentialsAuth(httpx.Auth):
    """Bearer tokens from client credentials: fetched when missing or about to expire, and again on a 401."""

    requires_response_body = True
    EXPIRY_MARGIN_SECONDS = 30.0  # ask for a new token this long before the old one runs out

    def __init__(self, base_url: str, client_id: str, client_secret: str, clock: Callable[[], float] = time.monotonic):
        self.token_url = base_url.rstrip("/") + TOKEN_PATH
        self.client_id = client_id
        self.client_secret = client_secret
        self.clock = clock
        self.token: str | None = None
        self.expires_at = 0.0
        self.tokens_fetched = 0
        self._lock = threading.Lock()

    def _token_request(self) -> httpx.Request:
        # ApplicationTokenRequestWithGrant spells the grant twice: its `required` list says
        # `grant_type` (OAuth's name, and what Airbyte's Python SDK sends), its properties and
        # Airbyte's docs say `grant-type`. The server reads neither (ApplicationsController.kt at
        # v0.63.19 reads only the id and the secret), so the body carries both: valid either way.
        return httpx.Request(
            "POST",
            self.token_url,
            json={
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "grant_type": "client_credentials",
                "grant-type": "client_credentials",
            },
        )

    def _store(self, response: httpx.Response) -> None:
        if response.status_code in (401, 403):
            raise AirbyteAuthError(
                f"Airbyte refused the client credentials at {self.token_url} (HTTP {response.status_code}): "
                "set AIRBYTE_CLIENT_ID and AIRBYTE_CLIENT_SECRET to an application's id and secret "
                "(`abctl local credentials` prints them; UI: User settings > Applications)"
            )
        if response.status_code >= 400:
            raise AirbyteApiError(
                f"token request failed: HTTP {response.status_code} {response.text[:300]}",
                response.status_code,
                response.text,
            )
        payload = response.json()  # PublicAccessTokenResponse: access_token, token_type, expires_in
        self.token = payload["access_token"]
        self.expires_at = self.clock() + float(payload.get("expires_in") or 180)
        self.tokens_fetched += 1

    def _expired(self) -> bool:
        return self.token is None or self.clock() >= self.expires_at - self.EXPIRY_MARGIN_SECONDS

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        with self._lock:
            stale = self._expired()
        if stale:
            token_response = yield self._token_request()
            with self._lock:
                self._store(token_response)
        request.headers["Authorization"] = f"Bearer {self.token}"
        response = yield request
        if response.status_code == 401:
            # Revoked or expired early (a server restart, a clock skew): one new token, one retry.
            token_response = yield self._token_request()
            with self._lock:
                self._store(token_response)
            request.headers["Authorization"] = f"Bearer {self.token}"
            yield request


# ---------------------------------------------------------------------------------------------
# The client.
# ---------------------------------------------------------------------------------------------
class AirbyteClient:
    """Airbyte's public API: workspaces, sources, destinations, connections, jobs."""

    def __init__(
        self,
        settings: AirbyteSettings | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ):
        self.settings = settings or AirbyteSettings()
        self.base_url = self.settings.url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url + API_PREFIX,
            auth=self.settings.auth(),
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json"},
        )

    @classmethod
    def from_env(cls, **kwargs: Any) -> AirbyteClient:
        return cls(AirbyteSettings.from_env(), **kwargs)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AirbyteClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- plumbing -----------------------------------------------------------------------------
    def _request(
        self, method: str, path: str, *, json: dict[str, Any] | None = None, params: dict[str, Any] | None = None
    ) -> Any:
        try:
            response = self._http.request(method, path, json=json, params=params)
        except httpx.ConnectError as error:
            raise AirbyteUnreachable(f"nothing answers at {self.base_url} ({error}): {START_PROFILE_HINT}") from error
        except httpx.TimeoutException as error:
            raise AirbyteUnreachable(
                f"{self.base_url} did not answer in time ({error!r}): is the platform "
                "still starting? `docker compose --profile airbyte ps`"
            ) from error
        if response.status_code in (401, 403):
            raise AirbyteAuthError(self._auth_message(response.status_code))
        if response.status_code >= 400:
            raise AirbyteApiError(
                f"{method} {API_PREFIX}{path} failed: HTTP {response.status_code} {response.text[:500]}",
                response.status_code,
                response.text,
            )
        if response.status_code == 204 or not response.content:
            return None
        if "json" not in response.headers.get("content-type", ""):
            return response.text  # /health answers the plain text `Successful operation`
        return response.json()

    def _auth_message(self, status: int) -> str:
        if self.settings.uses_client_credentials:
            return (
                f"Airbyte at {self.base_url} refused the bearer token (HTTP {status}): check AIRBYTE_CLIENT_ID "
                "and AIRBYTE_CLIENT_SECRET (`abctl local credentials`)"
            )
        return (
            f"Airbyte at {self.base_url} refused the login (HTTP {status}): set AIRBYTE_USERNAME and "
            "AIRBYTE_PASSWORD to the proxy's basic-auth user (compose default airbyte/password), or, on an "
            "abctl install, AIRBYTE_CLIENT_ID and AIRBYTE_CLIENT_SECRET (`abctl local credentials`)"
        )

    def _paged(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a list endpoint ({data, next, previous}), page by page with limit/offset."""
        offset = 0
        while True:
            page = self._request("GET", path, params={**(params or {}), "limit": PAGE_SIZE, "offset": offset})
            items = page.get("data") or []
            yield from items
            if len(items) < PAGE_SIZE or not page.get("next"):
                return
            offset += len(items)

    # -- health -------------------------------------------------------------------------------
    def health(self) -> bool:
        """True when `GET /health` answers 200 (unsecured upstream; sent with credentials all the same).

        The contract declares no body for it; the server sends the plain text `Successful operation`
        (HealthController.kt at v0.63.19), so the body is not read as JSON.
        """
        self._request("GET", "/health")
        return True

    # -- workspaces ---------------------------------------------------------------------------
    def list_workspaces(self) -> list[Workspace]:
        return [Workspace.from_api(item) for item in self._paged("/workspaces")]

    def create_workspace(self, name: str) -> Workspace:
        created = self._request("POST", "/workspaces", json={"name": name})
        return Workspace.from_api({"name": name, **created})

    def default_workspace(self) -> Workspace:
        """The install's first workspace (OSS has exactly one), created when there is none."""
        workspaces = self.list_workspaces()
        return workspaces[0] if workspaces else self.create_workspace("default")

    # -- sources ------------------------------------------------------------------------------
    def list_sources(self, workspace_id: str) -> list[Source]:
        return [Source.from_api(item) for item in self._paged("/sources", {"workspaceIds": workspace_id})]

    def find_source(self, workspace_id: str, name: str) -> Source | None:
        return next((source for source in self.list_sources(workspace_id) if source.name == name), None)

    def create_source(self, workspace_id: str, name: str, definition_id: str, configuration: dict[str, Any]) -> Source:
        body = {
            "name": name,
            "workspaceId": workspace_id,
            "definitionId": definition_id,
            "configuration": configuration,
        }
        # The documented response example carries only sourceId: fill the rest from what we sent.
        return Source.from_api({"sourceType": "", **body, **self._request("POST", "/sources", json=body)})

    def update_source(self, source_id: str, name: str, configuration: dict[str, Any]) -> Source:
        body = {"name": name, "configuration": configuration}
        return Source.from_api(self._request("PATCH", f"/sources/{source_id}", json=body))

    # -- destinations -------------------------------------------------------------------------
    def list_destinations(self, workspace_id: str) -> list[Destination]:
        return [Destination.from_api(item) for item in self._paged("/destinations", {"workspaceIds": workspace_id})]

    def find_destination(self, workspace_id: str, name: str) -> Destination | None:
        return next((dest for dest in self.list_destinations(workspace_id) if dest.name == name), None)

    def create_destination(
        self, workspace_id: str, name: str, definition_id: str, configuration: dict[str, Any]
    ) -> Destination:
        body = {
            "name": name,
            "workspaceId": workspace_id,
            "definitionId": definition_id,
            "configuration": configuration,
        }
        return Destination.from_api(
            {"destinationType": "", **body, **self._request("POST", "/destinations", json=body)}
        )

    def update_destination(self, destination_id: str, name: str, configuration: dict[str, Any]) -> Destination:
        body = {"name": name, "configuration": configuration}
        return Destination.from_api(self._request("PATCH", f"/destinations/{destination_id}", json=body))

    # -- connections --------------------------------------------------------------------------
    def list_connections(self, workspace_id: str | None = None) -> list[Connection]:
        params = {"workspaceIds": workspace_id} if workspace_id else None
        return [Connection.from_api(item) for item in self._paged("/connections", params)]

    def find_connection(self, name: str, workspace_id: str | None = None) -> Connection | None:
        return next((conn for conn in self.list_connections(workspace_id) if conn.name == name), None)

    def create_connection(self, body: dict[str, Any]) -> Connection:
        """`body` is a ConnectionCreateRequest: sourceId, destinationId (required), name, configurations, ..."""
        created = self._request("POST", "/connections", json=body)
        return Connection.from_api({"name": "", "workspaceId": "", **body, **created})

    def update_connection(self, connection_id: str, body: dict[str, Any]) -> Connection:
        """`body` is a ConnectionPatchRequest (no sourceId/destinationId: those cannot change)."""
        return Connection.from_api(self._request("PATCH", f"/connections/{connection_id}", json=body))

    # -- jobs ---------------------------------------------------------------------------------
    def trigger_sync(self, connection_id: str) -> Job:
        """Start a sync of the connection now (`POST /jobs {connectionId, jobType: "sync"}`)."""
        return Job.from_api(self._request("POST", "/jobs", json={"connectionId": connection_id, "jobType": "sync"}))

    def get_job(self, job_id: int) -> Job:
        return Job.from_api(self._request("GET", f"/jobs/{job_id}"))

    def wait_for_job(
        self, job_id: int, *, timeout: float = 3600.0, poll: float = 5.0, on_poll: Callable[[Job], None] | None = None
    ) -> Job:
        """Poll the job until it ends; return it if it succeeded, raise AirbyteJobError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if on_poll is not None:
                on_poll(job)
            if job.status == "succeeded":
                return job
            if job.is_terminal:
                raise AirbyteJobError(
                    f"Airbyte job {job.job_id} ended {job.status} (connection {job.connection_id}): its logs are in "
                    f"the Airbyte UI at {self.base_url} (Connections > the connection > Job history)",
                    job.job_id,
                    job.status,
                )
            if time.monotonic() >= deadline:
                raise AirbyteJobError(
                    f"Airbyte job {job.job_id} still {job.status} after {timeout:.0f} s: it goes on in Airbyte; "
                    "wait longer (timeout) or cancel it in the UI",
                    job.job_id,
                    job.status,
                )
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
