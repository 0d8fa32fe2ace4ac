"""The Airbyte platform client and bootstrap, against a contract fake of the public API and the real thing.

Most tests run the client (workshop_lab/flow_tools/airbyte_api.py) and the bootstrap
(workshop_lab/airbyte_platform.py) against tests/airbyte_contract_fake.py, which checks every request
and every response against Airbyte's own OpenAPI document for 0.63.19 (tests/contracts/); the
fixture fails a test that broke that contract, whichever side broke it. The last test talks to a real Airbyte
(docker compose --profile airbyte up) and skips where there is none: the platform's images cannot be
pulled on the lab's CI machines. It carries its own marker, `airbyte_platform`, not `docker`, so
LAB_REQUIRE_DOCKER=1 does not turn that honest skip into a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from tests.airbyte_contract_fake import HEALTH_BODY, AirbyteContractFake
from tests.conftest import free_port
from workshop_lab.airbyte_platform import DEFAULT_CONNECTION, BootstrapError, bootstrap, main, sync
from workshop_lab.flow_tools.airbyte_api import (
    AirbyteApiError,
    AirbyteAuthError,
    AirbyteClient,
    AirbyteJobError,
    AirbyteSettings,
    AirbyteUnreachable,
)

NO_PLATFORM_REASON = (
    "Airbyte platform images cannot be pulled here (no registry): start "
    "`docker compose --profile airbyte up` where they can and set AIRBYTE_URL"
)


@pytest.fixture
def fake() -> Iterator[AirbyteContractFake]:
    with AirbyteContractFake().running() as running:
        yield running
        running.assert_contract_kept()


def basic_client(fake: AirbyteContractFake, username: str = "airbyte", password: str = "password") -> AirbyteClient:
    return AirbyteClient(AirbyteSettings(url=fake.url, username=username, password=password))


def token_client(fake: AirbyteContractFake, secret: str = "lab-secret") -> AirbyteClient:
    return AirbyteClient(
        AirbyteSettings(url=fake.url, username="", password="", client_id="lab-client", client_secret=secret)
    )


# --- authentication ------------------------------------------------------------------------------
def test_basic_auth_reaches_the_api_and_finds_the_default_workspace(fake):
    with basic_client(fake) as client:
        assert client.health()
        workspace = client.default_workspace()
    assert workspace.name == "Default Workspace"
    assert fake.tokens_issued == 0  # basic auth never asks for a token


def test_health_is_read_as_the_plain_text_the_real_server_sends(fake):
    response = httpx.get(f"{fake.url}/api/public/v1/health")
    assert (response.text, response.headers["content-type"].split(";")[0]) == (HEALTH_BODY, "text/plain")
    with basic_client(fake) as client:
        assert client.health() is True  # no JSONDecodeError on `Successful operation`


def test_client_credentials_fetch_one_token_and_reuse_it(fake):
    with token_client(fake) as client:
        client.list_workspaces()
        client.list_connections()
    assert fake.tokens_issued == 1
    assert ("POST", "/api/public/v1/applications/token", 200) in fake.requests


def test_a_revoked_token_is_replaced_after_the_401_and_the_call_succeeds(fake):
    with token_client(fake) as client:
        client.list_workspaces()
        fake.revoke_tokens()
        workspaces = client.list_workspaces()  # 401 -> new token -> same request again
    assert workspaces and fake.tokens_issued == 2
    statuses = [status for method, path, status in fake.requests if path.endswith("/workspaces")]
    assert statuses == [200, 401, 200]


def test_an_expiring_token_is_renewed_before_it_runs_out():
    fake = AirbyteContractFake(token_seconds=20)  # shorter than the client's 30 s margin: renew every call
    with fake.running(), token_client(fake) as client:
        client.list_workspaces()
        client.list_workspaces()
    fake.assert_contract_kept()
    assert fake.tokens_issued == 2
    assert not [r for r in fake.requests if r[2] == 401]  # renewed up front, never refused


def test_wrong_basic_credentials_say_which_variables_to_set(fake):
    with basic_client(fake, password="wrong") as client, pytest.raises(AirbyteAuthError) as caught:
        client.list_workspaces()
    message = str(caught.value)
    assert "401" in message and "AIRBYTE_USERNAME" in message and "AIRBYTE_PASSWORD" in message
    assert "AIRBYTE_CLIENT_ID" in message  # and the abctl alternative


def test_wrong_client_secret_says_which_variables_to_set(fake):
    with token_client(fake, secret="wrong") as client, pytest.raises(AirbyteAuthError) as caught:
        client.list_workspaces()
    assert "AIRBYTE_CLIENT_ID" in str(caught.value) and "AIRBYTE_CLIENT_SECRET" in str(caught.value)
    assert "abctl local credentials" in str(caught.value)


def test_nothing_listening_says_how_to_start_the_profile():
    port = free_port()  # free a moment ago: nothing listens there
    with AirbyteClient(AirbyteSettings(url=f"http://127.0.0.1:{port}"), timeout=2) as client:
        with pytest.raises(AirbyteUnreachable) as caught:
            client.health()
    assert "docker compose --profile airbyte up" in str(caught.value)


def test_settings_prefer_client_credentials_when_both_are_set():
    settings = AirbyteSettings.from_env(
        {"AIRBYTE_URL": "http://airbyte:8000", "AIRBYTE_CLIENT_ID": "id", "AIRBYTE_CLIENT_SECRET": "secret"}
    )
    assert settings.url == "http://airbyte:8000" and settings.uses_client_credentials
    assert not isinstance(settings.auth(), httpx.BasicAuth)
    assert isinstance(AirbyteSettings.from_env({}).auth(), httpx.BasicAuth)  # airbyte/password by default


# --- bootstrap -----------------------------------------------------------------------------------
def test_bootstrap_creates_the_source_destination_and_connection_the_files_describe(fake):
    with basic_client(fake) as client:
        result = bootstrap(client, environ={})
    assert sorted(result.created) == ["connection faker-to-warehouse", "destination warehouse-duckdb", "source faker"]
    (source,) = fake.sources.values()
    assert source["configuration"]["seed"] == 42 and source["sourceType"] == "dfd88b22-b603-4c3d-aad7-3701784586b1"
    (destination,) = fake.destinations.values()
    assert destination["configuration"] == {"destination_path": "/local/airbyte_raw.duckdb", "schema": "raw"}
    (connection,) = fake.connections.values()
    assert connection["schedule"] == {"scheduleType": "manual"}
    assert (connection["namespaceDefinition"], connection["namespaceFormat"]) == ("custom_format", "raw")
    streams = {s["name"]: s for s in connection["configurations"]["streams"]}
    assert set(streams) == {"users", "products", "purchases"}
    assert streams["users"] == {
        "name": "users",
        "syncMode": "incremental_append",
        "cursorField": ["updated_at"],
        "primaryKey": [["id"]],
    }


def test_bootstrap_twice_updates_in_place_instead_of_duplicating(fake):
    with basic_client(fake) as client:
        first = bootstrap(client, environ={})
        second = bootstrap(client, environ={})
    assert len(fake.sources) == len(fake.destinations) == len(fake.connections) == 1
    assert second.created == [] and len(second.updated) == 3
    assert second.connections[0].connection_id == first.connections[0].connection_id


def test_bootstrap_adds_snowflake_only_when_snowflake_account_is_set(fake):
    env = {
        "SNOWFLAKE_ACCOUNT": "xy12345.eu-central-1",
        "SNOWFLAKE_USER": "loader",
        "SNOWFLAKE_PASSWORD": "pw",
        "SNOWFLAKE_WAREHOUSE": "WH",
        "SNOWFLAKE_DATABASE": "LAB",
        "SNOWFLAKE_ROLE": "LOADER",
    }
    with token_client(fake) as client:
        result = bootstrap(client, environ=env)
    assert [d.name for d in result.destinations] == ["warehouse-duckdb", "warehouse-snowflake"]
    snowflake = next(d for d in fake.destinations.values() if d["name"] == "warehouse-snowflake")
    assert snowflake["configuration"]["host"] == "xy12345.eu-central-1.snowflakecomputing.com"
    assert snowflake["configuration"]["schema"] == "RAW"
    assert {c["name"] for c in fake.connections.values()} == {"faker-to-warehouse", "faker-to-snowflake"}


# --- sync ----------------------------------------------------------------------------------------
def test_sync_triggers_a_job_and_waits_until_it_succeeds(fake):
    with basic_client(fake) as client:
        bootstrap(client, environ={})
        seen: list[str] = []
        job = client.trigger_sync(client.find_connection(DEFAULT_CONNECTION).connection_id)
        final = client.wait_for_job(job.job_id, timeout=30, poll=0.01, on_poll=lambda j: seen.append(j.status))
    assert seen == ["pending", "running", "succeeded"]
    assert final.status == "succeeded" and final.rows_synced == 1100
    assert ("POST", "/api/public/v1/jobs", 200) in fake.requests


def test_a_failed_job_raises_with_its_id_and_status(fake):
    with basic_client(fake) as client:
        bootstrap(client, environ={})
        fake.fail_next_job()
        with pytest.raises(AirbyteJobError) as caught:
            sync(client, DEFAULT_CONNECTION, timeout=30, poll=0.01)
    assert caught.value.status == "failed"
    assert f"job {caught.value.job_id} ended failed" in str(caught.value)


def test_a_job_still_running_at_the_timeout_raises_with_its_id(fake):
    with basic_client(fake) as client:
        bootstrap(client, environ={})
        job = client.trigger_sync(client.find_connection(DEFAULT_CONNECTION).connection_id)
        with pytest.raises(AirbyteJobError) as caught:
            client.wait_for_job(job.job_id, timeout=0, poll=0.01)
    assert caught.value.job_id == job.job_id and caught.value.status == "pending"
    assert "after 0 s" in str(caught.value)


def test_sync_before_bootstrap_says_to_bootstrap(fake):
    with basic_client(fake) as client, pytest.raises(BootstrapError) as caught:
        sync(client, DEFAULT_CONNECTION)
    assert str(caught.value) == (
        f"no Airbyte connection named {DEFAULT_CONNECTION!r}: run "
        "`python -m workshop_lab.airbyte_platform bootstrap` first"
    )
    assert not fake.jobs  # nothing was triggered


def test_the_cli_bootstraps_and_syncs(fake, monkeypatch, capsys):
    monkeypatch.setenv("AIRBYTE_URL", fake.url)
    for name in (
        "AIRBYTE_USERNAME",
        "AIRBYTE_PASSWORD",
        "AIRBYTE_CLIENT_ID",
        "AIRBYTE_CLIENT_SECRET",
        "SNOWFLAKE_ACCOUNT",
    ):
        monkeypatch.delenv(name, raising=False)
    assert main(["bootstrap"]) == 0
    assert "created connection faker-to-warehouse" in capsys.readouterr().out
    assert main(["sync", "--timeout", "60"]) == 0
    assert "succeeded" in capsys.readouterr().out


def test_the_contract_fake_refuses_a_request_outside_airbytes_document(fake):
    """The fake checks requests against Airbyte's document, so the tests above prove the client keeps it."""
    with basic_client(fake) as client:
        workspace = client.default_workspace()
    response = httpx.post(
        f"{fake.url}/api/public/v1/sources",
        auth=("airbyte", "password"),
        json={"name": "x", "workspaceId": workspace.workspace_id, "config": {}},
    )
    assert response.status_code == 400
    assert "'configuration' is a required property" in response.text  # SourceCreateRequest's required
    assert "'config' is not one of" in response.text  # and a field outside the schema
    response = httpx.post(
        f"{fake.url}/api/public/v1/jobs", auth=("airbyte", "password"), json={"connectionId": "c", "jobType": "SYNC"}
    )
    assert response.status_code == 400 and "'SYNC' is not one of ['sync', 'reset', 'refresh', 'clear']" in response.text
    response = httpx.get(f"{fake.url}/api/public/v1/sources", auth=("airbyte", "password"), params={"limit": 500})
    assert response.status_code == 400 and "500 is greater than the maximum of 100" in response.text
    response = httpx.put(f"{fake.url}/api/public/v1/jobs", auth=("airbyte", "password"), json={})
    assert response.status_code == 400 and "the contract has only ['GET', 'POST'] there" in response.text
    assert {violation.split(":")[0] for violation in fake.contract_violations} == {  # each recorded, so ...
        "request POST /api/public/v1/sources",
        "request POST /api/public/v1/jobs",
        "request GET /api/public/v1/sources",
        "request PUT /api/public/v1/jobs",
    }  # ... a test that sends one fails,
    fake.contract_violations.clear()  # except this one, which sent them on purpose


def test_the_contract_fake_checks_its_own_responses_too(fake):
    """A fake that answered outside the document would teach the client the wrong shapes: it cannot."""
    (workspace,) = fake.workspaces.values()
    del workspace["dataResidency"]  # WorkspaceResponse requires it
    with basic_client(fake) as client, pytest.raises(AirbyteApiError) as caught:
        client.list_workspaces()
    assert caught.value.status_code == 500
    (violation,) = fake.contract_violations
    assert "response to GET /api/public/v1/workspaces" in violation and "'dataResidency' is a required" in violation
    fake.contract_violations.clear()


# --- the real platform ---------------------------------------------------------------------------
def platform_answers(url: str) -> bool:
    try:
        return httpx.get(f"{url.rstrip('/')}/api/public/v1/health", timeout=3).status_code < 500
    except httpx.HTTPError:
        return False


@pytest.mark.airbyte_platform
def test_real_platform_bootstraps_and_syncs_faker_into_duckdb():
    url = os.environ.get("AIRBYTE_URL", "")
    if not url or not platform_answers(url):
        pytest.skip(NO_PLATFORM_REASON)
    with AirbyteClient.from_env() as client:
        assert client.health()
        first = bootstrap(client)
        again = bootstrap(client)
        assert again.created == [] and again.connections[0].connection_id == first.connections[0].connection_id
        job = sync(client, DEFAULT_CONNECTION, timeout=float(os.environ.get("AIRBYTE_SYNC_TIMEOUT", "1800")), poll=5)
    assert job.status == "succeeded"
