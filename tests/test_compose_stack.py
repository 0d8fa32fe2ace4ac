"""The Docker Compose lab: the real docker-compose.yml and the image built from images/, started
with testcontainers (`docker compose up --build --wait`) on free host ports as its own project."""

from __future__ import annotations

import time

import pytest

from tests.test_prefect_database import prefect_migration_head

pytestmark = [pytest.mark.docker, pytest.mark.stack]

WAREHOUSE_CHECK = (
    "import duckdb, os; db = duckdb.connect(os.environ['LAB_WAREHOUSE_PATH']); "
    "db.execute('create table if not exists lab_check as select 42 as answer'); "
    "print(db.execute('select answer from lab_check').fetchone()[0])"
)


def test_deployment_run_completes_on_the_dask_workers(compose_lab):
    rows = compose_lab.assert_first_flow_runs_on_dask(items=6)
    # Tasks ran in Dask worker containers, not in the Prefect worker's container.
    worker_host = compose_lab.run("exec", "-T", "prefect-worker", "hostname").stdout.strip()
    assert worker_host not in {row["host"] for row in rows}


def test_postgres_started_from_prefects_migrated_schema(compose_lab):
    """Postgres ran images/postgres/initdb/prefect-schema.sql as it created its volume (so the server
    had no migrations to apply), and the database the stack runs on is at Prefect's newest migration."""
    log = compose_lab.run("logs", "--no-color", "postgres").stdout
    assert "running /docker-entrypoint-initdb.d/prefect-schema.sql" in log, log[-3000:]
    revision = compose_lab.run(
        "exec",
        "-T",
        "postgres",
        "sh",
        "-c",
        'psql --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -tAc "select version_num from alembic_version"',
    )
    assert revision.stdout.split() == [prefect_migration_head("postgresql")], revision.stdout


def test_services_run_as_non_root(compose_lab):
    for service in ("prefect-server", "prefect-worker", "dask-scheduler", "dask-worker"):
        uid = compose_lab.run("exec", "-T", service, "id", "-u").stdout.strip()
        assert uid != "0", f"{service} runs as root"


def test_down_then_up_keeps_history_and_warehouse(compose_lab):
    run = compose_lab.run_deployment("hello-lab/hello-lab")
    assert run["state"]["type"] == "COMPLETED", run["state"]
    assert compose_lab.run("exec", "-T", "prefect-worker", "python", "-c", WAREHOUSE_CHECK).stdout.strip() == "42"

    compose_lab.run("down")  # no --volumes: data is kept
    compose_lab.run("up", "--wait")

    assert run["id"] in {r["id"] for r in compose_lab.flow_runs()}, "run history must survive down/up"
    # The table written before `down` is read back from the warehouse volume.
    read_back = "import duckdb, os; print(duckdb.connect(os.environ['LAB_WAREHOUSE_PATH']).execute('select answer from lab_check').fetchone()[0])"
    assert compose_lab.run("exec", "-T", "dask-worker", "python", "-c", read_back).stdout.strip() == "42"
    again = compose_lab.run_deployment("hello-lab/hello-lab")
    assert again["state"]["type"] == "COMPLETED", again["state"]


def test_scale_dask_workers_to_three(compose_lab):
    compose_lab.run("up", "--wait", "--scale", "dask-worker=3")
    try:
        deadline = time.monotonic() + 60
        while len(workers := compose_lab.dask_workers()) < 3 and time.monotonic() < deadline:
            time.sleep(1)
        assert len(workers) == 3, workers
        run = compose_lab.run_deployment("hello-lab/hello-lab", {"items": 9})
        assert run["state"]["type"] == "COMPLETED", run["state"]
    finally:
        compose_lab.run("up", "--wait", "--scale", "dask-worker=2")


def test_setup_deployed_every_module_of_prefect_yaml(compose_lab):
    import yaml

    from workshop_lab.stack.settings import FLOWS_DIR

    wanted = {d["name"] for d in yaml.safe_load((FLOWS_DIR / "prefect.yaml").read_text())["deployments"]}
    deployed = {d["name"] for d in compose_lab.post("/deployments/filter", {"limit": 200})}
    assert wanted <= deployed, f"not deployed on the compose lab: {sorted(wanted - deployed)}"


def test_elt_runs_end_to_end_in_docker(compose_lab):
    """The ELT pipeline in the containers: the connector comes from the image (nothing is downloaded
    at run time), dbt builds from the read-only mounted project, and the counts reconcile."""
    faker = compose_lab.run("exec", "-T", "prefect-worker", "ls", "/opt/airbyte-venv/bin/source-faker", check=False)
    assert faker.returncode == 0, "source-faker must be installed in the lab image"
    run = compose_lab.run_deployment("elt/elt", {"records": 1000, "inject_bad_records": 3}, timeout=600)
    assert run["state"]["type"] == "COMPLETED", (run["state"]["message"], compose_lab.run_logs(run["id"])[-4000:])
    rows = {row["layer"]: row for row in compose_lab.table_artifact(run["id"], "elt-row-counts")}
    for stream in ("users", "products", "purchases"):
        raw, staged, quarantined = (rows[layer][stream] for layer in ("raw (airbyte_raw.raw)", "staging", "quarantine"))
        assert raw == staged + quarantined and raw == rows["source (emitted this run)"][stream], (stream, rows)
    assert sum(rows["quarantine"][s] for s in ("users", "products", "purchases")) >= 3, rows
    # dbt's build output went to the warehouse volume, not into the mounted project.
    listing = compose_lab.run("exec", "-T", "prefect-worker", "ls", "/data/warehouse/dbt/target").stdout
    assert "manifest.json" in listing, listing
