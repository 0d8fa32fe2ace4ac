"""The Airbyte platform's bootstrap: source, destination and connection from the files in airbyte/.

    python -m workshop_lab.airbyte_platform bootstrap   # create or update them (safe to run again)
    python -m workshop_lab.airbyte_platform sync        # trigger faker-to-warehouse, wait for the job

The platform is the opt-in compose profile (docker compose --profile airbyte up --wait; see
docs/airbyte-platform.md). The same files drive the embedded path (flows/13_elt.py, which runs the
connector itself: airbyte/extract_load.py with the lab's DuckDB loader, PyAirbyte opt-in), so both
sync the same source with the same streams. They do not land in the same place yet: the platform's
destination-duckdb writes into the Docker volume `airbyte_local` (PLATFORM_LOCAL_ROOT below), which
the lab's dbt does not read (issue 15).
    airbyte/source-faker.yaml           the source and its streams
    airbyte/destination-duckdb.yaml     the lab's DuckDB warehouse
    airbyte/destination-snowflake.yaml  Snowflake, only when SNOWFLAKE_ACCOUNT is set
    airbyte/connection.yaml             the connection between them

Idempotent by name: each object is looked up by its `name:` in the workspace and updated in place
when it exists, created when it does not. Settings come from the environment: AIRBYTE_URL
(default http://127.0.0.1:8000), AIRBYTE_USERNAME / AIRBYTE_PASSWORD (basic auth, the compose
release) or AIRBYTE_CLIENT_ID / AIRBYTE_CLIENT_SECRET (client credentials, abctl installs).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from workshop_lab.flow_tools.airbyte_api import (
    AirbyteClient,
    AirbyteError,
    Connection,
    Destination,
    Job,
    Source,
    Workspace,
)

AIRBYTE_DIR = Path(__file__).resolve().parent.parent / "airbyte"
DEFAULT_CONNECTION = "faker-to-warehouse"
SNOWFLAKE_CONNECTION = "faker-to-snowflake"

# Where connector containers see the platform's local-files volume (LOCAL_DOCKER_MOUNT in
# airbyte/platform/compose.yaml). destination-duckdb runs in its own container, started by the
# worker, and may write only under /local: a destination_path anywhere else is refused by the
# connector or lands in a container that is thrown away after the sync. On the host the file is in
# the Docker volume `airbyte_local`.
PLATFORM_LOCAL_ROOT = "/local"

# source-faker.yaml says how each stream reads (incremental / full_refresh); Airbyte's public API
# wants read and write together (ConnectionSyncModeEnum). The raw layer appends: dbt's staging
# models deduplicate on the primary key, the same as on the embedded path (flows/13_elt.py).
SYNC_MODES = {"incremental": "incremental_append", "full_refresh": "full_refresh_overwrite"}


class BootstrapError(AirbyteError):
    """The files in airbyte/ or the environment do not describe what the platform needs."""


# ---------------------------------------------------------------------------------------------
# The files in airbyte/, turned into API request bodies.
# ---------------------------------------------------------------------------------------------
def load_yaml(name: str, directory: Path = AIRBYTE_DIR) -> dict[str, Any]:
    return yaml.safe_load((directory / name).read_text())


def stream_configurations(source_spec: Mapping[str, Any]) -> dict[str, Any]:
    """The connection's `configurations` (StreamConfigurations) from source-faker.yaml's `streams:`."""
    streams = []
    for name, stream in source_spec["streams"].items():
        config: dict[str, Any] = {"name": name, "syncMode": SYNC_MODES[stream["sync_mode"]]}
        if stream.get("cursor_field"):
            config["cursorField"] = [stream["cursor_field"]]
        if stream.get("primary_key"):
            config["primaryKey"] = [[stream["primary_key"]]]
        streams.append(config)
    return {"streams": streams}


def duckdb_configuration(spec: Mapping[str, Any]) -> dict[str, Any]:
    """destination-duckdb's config on the platform: the file under /local (see PLATFORM_LOCAL_ROOT)."""
    return {"destination_path": f"{PLATFORM_LOCAL_ROOT}/{spec['file']}", "schema": spec["schema"]}


def snowflake_configuration(spec: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """destination-snowflake's config from the environment variables destination-snowflake.yaml names."""
    names: dict[str, str] = spec["config_from_env"]
    missing = [env for env in names.values() if not environ.get(env)]
    if missing:
        raise BootstrapError(
            f"SNOWFLAKE_ACCOUNT is set, so the Snowflake destination is wanted, but "
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not: set them in .env"
        )
    value = {key: environ[env] for key, env in names.items()}
    account = value["account"]
    # The connector's spec wants the host, not the account: <account>.snowflakecomputing.com.
    host = account if account.endswith(".snowflakecomputing.com") else f"{account}.snowflakecomputing.com"
    return {
        "host": host,
        "role": value["role"],
        "warehouse": value["warehouse"],
        "database": value["database"],
        "schema": spec["schema"],
        "username": value["username"],
        "credentials": {"auth_type": "Username and Password", "password": value["password"]},
    }


def connection_body(connection_spec: Mapping[str, Any], source_spec: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a ConnectionCreateRequest / ConnectionPatchRequest that connection.yaml decides."""
    if connection_spec.get("schedule", "manual") != "manual":
        raise BootstrapError("connection.yaml: only `schedule: manual` is supported (Prefect triggers the syncs)")
    body: dict[str, Any] = {
        "configurations": stream_configurations(source_spec),
        "schedule": {"scheduleType": "manual"},
        "status": "active",
    }
    if connection_spec.get("namespace"):
        body["namespaceDefinition"] = "custom_format"
        body["namespaceFormat"] = connection_spec["namespace"]
    else:
        body["namespaceDefinition"] = "destination"
    return body


# ---------------------------------------------------------------------------------------------
# Create or update, by name.
# ---------------------------------------------------------------------------------------------
@dataclass
class BootstrapResult:
    """What the bootstrap found, created and updated."""

    workspace: Workspace
    source: Source | None = None
    destinations: list[Destination] = field(default_factory=list)
    connections: list[Connection] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)


def ensure_source(client: AirbyteClient, workspace_id: str, spec: Mapping[str, Any], result: BootstrapResult) -> Source:
    existing = client.find_source(workspace_id, spec["name"])
    if existing:
        result.updated.append(f"source {spec['name']}")
        return client.update_source(existing.source_id, spec["name"], dict(spec["config"]))
    result.created.append(f"source {spec['name']}")
    return client.create_source(workspace_id, spec["name"], spec["definition_id"], dict(spec["config"]))


def ensure_destination(
    client: AirbyteClient,
    workspace_id: str,
    spec: Mapping[str, Any],
    configuration: dict[str, Any],
    result: BootstrapResult,
) -> Destination:
    existing = client.find_destination(workspace_id, spec["name"])
    if existing:
        result.updated.append(f"destination {spec['name']}")
        return client.update_destination(existing.destination_id, spec["name"], configuration)
    result.created.append(f"destination {spec['name']}")
    return client.create_destination(workspace_id, spec["name"], spec["definition_id"], configuration)


def ensure_connection(
    client: AirbyteClient,
    workspace_id: str,
    name: str,
    source: Source,
    destination: Destination,
    body: dict[str, Any],
    result: BootstrapResult,
) -> Connection:
    existing = client.find_connection(name, workspace_id)
    if existing:
        if (existing.source_id, existing.destination_id) != (source.source_id, destination.destination_id):
            # The public API cannot re-point a connection (ConnectionPatchRequest has no sourceId).
            raise BootstrapError(
                f"connection {name!r} exists but joins other objects (source {existing.source_id}, "
                f"destination {existing.destination_id}): delete it in the Airbyte UI and bootstrap again"
            )
        result.updated.append(f"connection {name}")
        return client.update_connection(existing.connection_id, {"name": name, **body})
    result.created.append(f"connection {name}")
    return client.create_connection(
        {"name": name, "sourceId": source.source_id, "destinationId": destination.destination_id, **body}
    )


def bootstrap(
    client: AirbyteClient, *, directory: Path = AIRBYTE_DIR, environ: Mapping[str, str] | None = None
) -> BootstrapResult:
    """Create or update the source, the destination(s) and the connection(s) the files in airbyte/ describe."""
    env = os.environ if environ is None else environ
    source_spec = load_yaml("source-faker.yaml", directory)
    duckdb_spec = load_yaml("destination-duckdb.yaml", directory)
    connection_spec = load_yaml("connection.yaml", directory)
    if connection_spec["source"] != source_spec["name"] or connection_spec["destination"] != duckdb_spec["name"]:
        raise BootstrapError(
            "connection.yaml's source/destination do not name source-faker.yaml / destination-duckdb.yaml"
        )

    workspace = client.default_workspace()
    result = BootstrapResult(workspace=workspace)
    source = result.source = ensure_source(client, workspace.workspace_id, source_spec, result)
    body = connection_body(connection_spec, source_spec)

    duckdb = ensure_destination(client, workspace.workspace_id, duckdb_spec, duckdb_configuration(duckdb_spec), result)
    result.destinations.append(duckdb)
    result.connections.append(
        ensure_connection(client, workspace.workspace_id, connection_spec["name"], source, duckdb, body, result)
    )

    if env.get("SNOWFLAKE_ACCOUNT"):
        snowflake_spec = load_yaml("destination-snowflake.yaml", directory)
        snowflake = ensure_destination(
            client, workspace.workspace_id, snowflake_spec, snowflake_configuration(snowflake_spec, env), result
        )
        result.destinations.append(snowflake)
        # Snowflake keeps its own schema (destination-snowflake.yaml's RAW): the destination's namespace.
        snowflake_body = {**body, "namespaceDefinition": "destination"}
        snowflake_body.pop("namespaceFormat", None)
        result.connections.append(
            ensure_connection(
                client, workspace.workspace_id, SNOWFLAKE_CONNECTION, source, snowflake, snowflake_body, result
            )
        )
    return result


def sync(
    client: AirbyteClient, connection_name: str = DEFAULT_CONNECTION, *, timeout: float = 3600.0, poll: float = 5.0
) -> Job:
    """Trigger one sync of the named connection and wait until it ends (AirbyteJobError unless it succeeded)."""
    connection = client.find_connection(connection_name)
    if connection is None:
        raise BootstrapError(
            f"no Airbyte connection named {connection_name!r}: run "
            "`python -m workshop_lab.airbyte_platform bootstrap` first"
        )
    job = client.trigger_sync(connection.connection_id)
    print(f"sync job {job.job_id} started for {connection_name} ({job.status})", flush=True)
    return client.wait_for_job(
        job.job_id, timeout=timeout, poll=poll, on_poll=lambda j: print(f"  job {j.job_id}: {j.status}", flush=True)
    )


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workshop_lab.airbyte_platform",
        description="Set up and run the lab's Airbyte platform connection.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    verbs.add_parser("bootstrap", help="create or update the source, destination and connection from airbyte/")
    sync_parser = verbs.add_parser("sync", help="trigger a sync and wait for its job")
    sync_parser.add_argument("--connection", default=DEFAULT_CONNECTION, help="connection name (default: %(default)s)")
    sync_parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait (default: %(default)s)")
    args = parser.parse_args(argv)

    try:
        with AirbyteClient.from_env() as client:
            if args.verb == "bootstrap":
                result = bootstrap(client)
                print(f"workspace {result.workspace.name} ({result.workspace.workspace_id})")
                for line in result.created:
                    print(f"  created {line}")
                for line in result.updated:
                    print(f"  updated {line}")
                for connection in result.connections:
                    print(f"connection {connection.name}: {connection.connection_id}")
            else:
                job = sync(client, args.connection, timeout=args.timeout)
                print(f"sync job {job.job_id} {job.status}: {job.rows_synced or 0} rows, {job.duration or '?'}")
    except AirbyteError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
