"""
# 13 · Putting a real pipeline together: Airbyte → DuckDB warehouse → dbt, orchestrated by Prefect

What you will learn
- ELT: **extract-load** raw data with a real Airbyte connector (source-faker: users, products,
  purchases), then **transform** it inside the warehouse with dbt. DuckDB stands in for Snowflake;
  `target="snowflake"` runs the same pipeline against Snowflake (settings in `.env`).
- Airbyte connectors run without the Airbyte platform: they are programs that print records as
  JSON lines (the Airbyte protocol), and the lab's loader hands those lines straight to DuckDB
  (`airbyte/duckdb_loader.py`; PyAirbyte loads the Snowflake target). Syncs are **incremental**: the
  connector's state is saved beside the raw tables, so the second run loads only what is new (with
  source-faker's settings here: nothing, until you ask for a full refresh).
- prefect-dbt's `PrefectDbtRunner` turns every dbt model and test into a task run: the run's page
  shows the dbt DAG, and a failing dbt test fails the flow with the node's name.
- **Nothing is lost**: records that fail validation (null keys, bad types, out-of-range values) land
  in `quarantine.quarantined_records` with the reason, and the flow proves, per stream, that
  raw rows = staged rows + quarantined rows. Inject bad records on purpose with `inject_bad_records`:
  they go into the records this run loaded; on an incremental run that loaded nothing new, records
  loaded earlier are re-sent as corrupted new versions, and the run says so.
- **One writer at a time**: DuckDB allows one writing process per file. The loader writes its own
  file (`airbyte_raw.duckdb`), dbt writes the warehouse and attaches the raw file read-only, and each
  holds the file's writer lock (`workshop_lab.flow_tools.warehouse.writer_lock`) while it writes; a second
  writer (another ELT run, the workflow-analytics flow) waits, saying who it is waiting for.
- The results are Prefect **artifacts** (row counts per layer, a summary of the marts) and a
  notification in the lab's webhook inbox.

How to run it
- `./lab run elt/elt` (or UI: Deployments → elt → Run). About a minute for 10,000 users.
- Bad data on purpose: `./lab run elt/elt --param inject_bad_records=10`, then open the run's
  artifacts (`elt-summary` says which records were corrupted) and query the quarantine:
      ./lab sql "select stream, reason, count(*) from quarantine.quarantined_records group by all"
- The daily schedule ships paused: Deployments → elt → toggle the schedule.
- The dbt project is `dbt_project/`: edit a model, run again, watch the new task runs.

Walkthrough
1. Extract-load: the Airbyte environment runs `airbyte/extract_load.py` (source-faker → DuckDB).
2. Transform: `dbt build` through `PrefectDbtRunner` (validation → staging → marts, with tests).
3. Quality gates: every emitted record loaded, raw = staged + quarantined, injected faults caught.
4. Artifacts and a notification.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Annotated, Any, Literal

import duckdb
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import Field

from workshop_lab.flow_tools.warehouse import airbyte_raw_path, warehouse_path, writer_lock

REPO = Path(__file__).resolve().parent.parent
AIRBYTE_DIR = Path(os.environ.get("LAB_AIRBYTE_DIR", REPO / "airbyte"))
DBT_PROJECT_DIR = Path(os.environ.get("LAB_DBT_PROJECT_DIR", REPO / "dbt_project"))
# The connector (and PyAirbyte, opt-in) live in their own venv (their pins cannot live beside Prefect's).
AIRBYTE_PYTHON = Path(os.environ.get("LAB_AIRBYTE_PYTHON", REPO / ".venv-airbyte" / "bin" / "python"))

Stream = Literal["users", "products", "purchases"]
STREAMS: list[Stream] = ["users", "products", "purchases"]
SLACK_BLOCK = "workshop-slack"


# ---------------------------------------------------------------------------------------------
# 1. Extract-load. The loader runs in the Airbyte environment as a subprocess; its log lines go to
#    this task's log, its last line is a JSON summary. Retries: a held writer lock past its wait
#    (WarehouseLocked) or a connector that crashed is worth one more try a little later.
# ---------------------------------------------------------------------------------------------
@task(retries=2, retry_delay_seconds=10)
def extract_load(
    records: int, streams: list[str], target: str, inject_bad_records: int, full_refresh: bool
) -> dict[str, Any]:
    """Sync source-faker into the raw tables (airbyte/extract_load.py); return per-stream counts."""
    logger = get_run_logger()
    if not AIRBYTE_PYTHON.exists():
        raise RuntimeError(
            f"The Airbyte environment is missing ({AIRBYTE_PYTHON}). "
            "`./lab up` creates it; in Docker it is part of the lab image."
        )
    raw_db = airbyte_raw_path()
    command = [
        str(AIRBYTE_PYTHON),
        str(AIRBYTE_DIR / "extract_load.py"),
        "--target",
        target,
        "--raw-db",
        str(raw_db),
        "--records",
        str(records),
        "--streams",
        ",".join(streams),
        "--inject-bad-records",
        str(inject_bad_records),
    ] + (["--full-refresh"] if full_refresh else [])
    env = {**os.environ, "AIRBYTE_LOGGING_ROOT": str(raw_db.parent / "airbyte-logs")}
    with writer_lock(raw_db, purpose="elt: extract-load", log=logger.info):
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        summary, tail = None, []
        for line in process.stdout:  # type: ignore[union-attr]
            line = line.rstrip()
            if line.startswith("ELT_RESULT "):
                summary = json.loads(line.removeprefix("ELT_RESULT "))
            elif line.startswith("inject_bad_records="):
                continue  # what the injection did: in the summary, logged once below at its level
            elif line and "Warning" not in line:
                tail = (tail + [line])[-40:]
                logger.info(line)
        process.wait()
    if process.returncode != 0 or summary is None:
        raise RuntimeError(f"extract-load failed (exit {process.returncode}); its last lines:\n" + "\n".join(tail))
    for stream, counts in summary["streams"].items():
        logger.info(
            f"{stream}: emitted {counts['emitted']}, loaded {counts['loaded']}, raw rows {counts['raw_rows_after']}"
        )
    injection = summary["injection"]
    if len(injection["faults"]) < injection["requested"]:  # fewer bad records than asked for: say so loudly
        logger.warning(injection["message"])
    elif injection["message"]:
        logger.info(injection["message"])
    return summary


# ---------------------------------------------------------------------------------------------
# 2. Transform. PrefectDbtRunner runs dbt in this process and makes each dbt node a task run.
#    dbt writes the warehouse and reads the raw file, so it holds both writer locks (always in
#    the same order, raw first: two flows can never wait on each other in a circle).
# ---------------------------------------------------------------------------------------------
def dbt_environment(target: str) -> dict[str, str]:
    state = warehouse_path().parent / "dbt"
    return {
        "DBT_TARGET": target,
        "LAB_WAREHOUSE_PATH": str(warehouse_path()),
        "LAB_AIRBYTE_RAW_PATH": str(airbyte_raw_path()),
        "DBT_TARGET_PATH": str(state / "target"),  # not into dbt_project/, which may be read-only
        "DBT_LOG_PATH": str(state / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def dbt_build(target: str) -> None:
    from prefect_dbt import PrefectDbtRunner, PrefectDbtSettings

    logger = get_run_logger()
    os.environ.update(dbt_environment(target))  # dbt reads profiles.yml's env_var()s from here
    settings = PrefectDbtSettings(
        project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target_path=Path(os.environ["DBT_TARGET_PATH"])
    )
    with (
        writer_lock(airbyte_raw_path(), purpose="elt: dbt build (reads raw)", log=logger.info),
        writer_lock(warehouse_path(), purpose="elt: dbt build", log=logger.info),
    ):
        try:
            PrefectDbtRunner(settings=settings, raise_on_failure=True).invoke(["build"])
        finally:
            release_dbt_duckdb()


def release_dbt_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process after a build.

    dbt-duckdb caches its database for the life of the process; left open, this flow run would
    keep the warehouse file locked after it gave up the writer lock, and the next writer (another
    process) would fail with DuckDB's "Could not set lock on file".
    """
    import gc

    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    environment, DuckDBConnectionManager._ENV = DuckDBConnectionManager._ENV, None
    if environment is not None:
        environment.close()
    gc.collect()


# ---------------------------------------------------------------------------------------------
# 3. Quality gates: the promises of the pipeline, checked on the data itself.
# ---------------------------------------------------------------------------------------------
@task
def warehouse_counts() -> dict[str, Any]:
    """Rows per layer, read from the warehouse with the raw file attached (read-only)."""
    with writer_lock(warehouse_path(), purpose="elt: quality gates"):
        con = duckdb.connect(str(warehouse_path()), read_only=True)
        try:
            con.execute(f"attach '{airbyte_raw_path()}' as airbyte_raw (read_only)")
            quarantined = dict(
                con.execute("select stream, count(*) from quarantine.quarantined_records group by stream").fetchall()
            )
            layers = {
                stream: {
                    "raw": con.execute(f"select count(*) from airbyte_raw.raw.{stream}").fetchone()[0],
                    "staged": con.execute(f"select count(*) from staging.stg_{stream}").fetchone()[0],
                    "quarantined": quarantined.get(stream, 0),
                }
                for stream in STREAMS
            }
            marts = {
                name: con.execute(f"select count(*) from marts.{name}").fetchone()[0]
                for name in ("customers", "daily_revenue", "product_performance")
            }
            reasons = con.execute(
                "select stream, reason, count(*) as records from quarantine.quarantined_records "
                "group by all order by records desc"
            ).fetchall()
            quarantined_ids = {
                row[0]: row[1]
                for row in con.execute("select raw_id, reason from quarantine.quarantined_records").fetchall()
            }
            headline = con.execute("""
                select (select count(*) from marts.customers where purchases > 0),
                       (select round(sum(revenue), 2) from marts.daily_revenue),
                       (select make || ' ' || model from marts.product_performance order by revenue desc limit 1),
                       (select max(purchase_date) from marts.daily_revenue),
                       (select round(revenue, 2) from marts.daily_revenue order by purchase_date desc limit 1)
            """).fetchone()
        finally:
            con.close()
    return {
        "layers": layers,
        "marts": marts,
        "reasons": reasons,
        "quarantined_ids": quarantined_ids,
        "headline": dict(
            zip(
                ["buying_customers", "total_revenue", "top_product", "last_day", "last_day_revenue"],
                headline,
                strict=True,
            )
        ),
    }


@task
def quality_gates(loaded: dict[str, Any], counts: dict[str, Any]) -> list[str]:
    """Fail the run, with every broken promise listed, unless the data reconciles."""
    problems = []
    for stream, c in loaded["streams"].items():
        if c["emitted"] != c["loaded"]:
            problems.append(
                f"{stream}: the connector emitted {c['emitted']} records but {c['loaded']} reached the raw table"
            )
    for stream, layer in counts["layers"].items():
        if layer["raw"] != layer["staged"] + layer["quarantined"]:
            problems.append(
                f"{stream}: {layer['raw']} raw rows != {layer['staged']} staged + {layer['quarantined']} quarantined"
            )
    for fault in loaded["injection"]["faults"]:
        caught = counts["quarantined_ids"].get(fault["raw_id"])
        if caught != fault["fault"]:
            problems.append(
                f"injected fault '{fault['fault']}' on {fault['stream']} {fault['raw_id']} was "
                + (f"quarantined as '{caught}'" if caught else "not quarantined")
            )
    if any(rows == 0 for rows in counts["marts"].values()):
        problems.append(f"an empty mart: {counts['marts']}")
    if problems:
        raise ValueError("Quality gates failed:\n- " + "\n- ".join(problems))
    return [
        f"{stream}: raw {layer['raw']} = staged {layer['staged']} + quarantined {layer['quarantined']}"
        for stream, layer in counts["layers"].items()
    ]


# ---------------------------------------------------------------------------------------------
# 4. What a person reads: artifacts on the run's page, and a message in the inbox (or Slack).
# ---------------------------------------------------------------------------------------------
@task
def publish(loaded: dict[str, Any], counts: dict[str, Any]) -> str:
    """Row counts per layer as a table artifact, the marts' headline numbers as a markdown one."""
    rows = [
        {"layer": "source (emitted this run)", **{s: loaded["streams"].get(s, {}).get("emitted", 0) for s in STREAMS}},
        {"layer": "raw (airbyte_raw.raw)", **{s: counts["layers"][s]["raw"] for s in STREAMS}},
        {"layer": "staging", **{s: counts["layers"][s]["staged"] for s in STREAMS}},
        {"layer": "quarantine", **{s: counts["layers"][s]["quarantined"] for s in STREAMS}},
        {
            "layer": "bad records injected (this run)",
            **{s: sum(f["stream"] == s for f in loaded["injection"]["faults"]) for s in STREAMS},
        },
    ]
    create_table_artifact(
        key="elt-row-counts", table=rows, description="Rows per layer and stream: raw = staging + quarantine, always."
    )
    h = counts["headline"]
    reasons = (
        "\n".join(f"| {stream} | {reason} | {n} |" for stream, reason, n in counts["reasons"]) or "| - | none | 0 |"
    )
    summary = (
        f"# ELT run: {sum(c['loaded'] for c in loaded['streams'].values())} records loaded, "
        f"{sum(layer['quarantined'] for layer in counts['layers'].values())} quarantined in all\n\n"
        + (f"{loaded['injection']['message']}.\n\n" if loaded["injection"]["message"] else "")
        + f"- Customers who bought: **{h['buying_customers']}**\n"
        f"- Revenue (purchases not returned): **{h['total_revenue']}**\n"
        f"- Best-selling product by revenue: **{h['top_product']}**\n"
        f"- Last day with sales: {h['last_day']} ({h['last_day_revenue']})\n"
        f"- Marts: " + ", ".join(f"`marts.{name}` {n} rows" for name, n in counts["marts"].items()) + "\n\n"
        "| stream | quarantine reason | records |\n| --- | --- | --- |\n" + reasons + "\n"
    )
    create_markdown_artifact(key="elt-summary", markdown=summary, description="The marts' headline numbers")
    return summary


@task(retries=2, retry_delay_seconds=2)
def notify(text: str) -> None:
    """Post to the workshop-slack block (the lab's inbox, or your Slack); an HTTP error retries."""
    from prefect_slack import SlackWebhook

    # This flow is sync, so use the block's sync client. (prefect-slack's message *task* is async:
    # called from a sync flow without `await` it would send nothing, see flows/05_notifications.py.)
    webhook = SlackWebhook.load(SLACK_BLOCK)
    response = webhook.get_client(sync_client=True).send(text=text)
    if response.status_code >= 400:
        raise RuntimeError(f"the webhook answered {response.status_code}: {response.body}")


# ---------------------------------------------------------------------------------------------
# The flow.
# ---------------------------------------------------------------------------------------------
@flow(name="elt", log_prints=True)
def elt(
    records: Annotated[
        int,
        Field(
            ge=100,
            le=2_000_000,
            description="source-faker's count: users (and about as many purchases) on a first or full-refresh sync.",
        ),
    ] = 10_000,
    streams: Annotated[
        list[Stream],
        Field(
            min_length=1,
            description="Which streams to sync (the dbt models read all three: sync all three at least once).",
        ),
    ] = STREAMS,
    target: Annotated[
        Literal["duckdb", "snowflake"],
        Field(description="duckdb: the lab's warehouse; snowflake: SNOWFLAKE_* from .env."),
    ] = "duckdb",
    inject_bad_records: Annotated[
        int,
        Field(
            ge=0,
            le=1_000,
            description="Corrupt this many records, to see the quarantine work: those this run loaded, else (an incremental run often loads nothing) earlier ones, re-sent as corrupted new versions.",
        ),
    ] = 0,
    full_refresh: Annotated[bool, Field(description="Ignore the saved state and sync everything again.")] = False,
    notify_inbox: Annotated[bool, Field(description="Post the summary to the workshop-slack webhook.")] = True,
) -> dict[str, Any]:
    """Extract-load source-faker, build the dbt project, check the data, publish the results."""
    if len(set(streams)) != len(streams):
        raise ValueError(f"streams lists a stream twice: {streams}")
    if target == "snowflake":
        missing = [
            v
            for v in (
                "SNOWFLAKE_ACCOUNT",
                "SNOWFLAKE_USER",
                "SNOWFLAKE_PASSWORD",
                "SNOWFLAKE_WAREHOUSE",
                "SNOWFLAKE_DATABASE",
            )
            if not os.environ.get(v)
        ]
        if missing:
            raise ValueError(f"target='snowflake' needs {', '.join(missing)} in .env (see .env.example)")

    loaded = extract_load(records, list(streams), target, inject_bad_records, full_refresh)
    dbt_build(target)
    if target == "snowflake":  # the reconcile test ran inside dbt; the DuckDB checks below do not apply
        return loaded
    counts = warehouse_counts()
    checks = quality_gates(loaded, counts)
    summary = publish(loaded, counts)
    if notify_inbox:
        notify(summary)
    print("\n".join(checks))
    return {
        "streams": loaded["streams"],
        "layers": counts["layers"],
        "marts": counts["marts"],
        "injected_bad_records": loaded["injection"],
    }


if __name__ == "__main__":
    elt()
