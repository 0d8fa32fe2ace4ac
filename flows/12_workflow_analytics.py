"""
# 12 · Analytics on workflow history: the orchestrator's own data, in the warehouse

What you will learn
- Every run the lab has ever made is data in Prefect's API: which flow, which state, when it
  started, how long it ran, how many attempts its tasks took. The UI's dashboard and filters show
  some of it; reading it yourself answers the rest ("which flow fails most?", "how slow is p90?").
- The API hands out history in pages: `read_flow_runs(limit=..., offset=...)` refuses limits above
  200 (HTTP 422), so a complete read is a loop that moves `offset` until a page comes back short.
- The history lands in the lab's DuckDB warehouse (`LAB_WAREHOUSE_PATH`), where SQL does the
  analytics: success rate, duration percentiles (p50/p90) and retries, per flow.
- Not every run in the API has happened: the scheduler creates a schedule's next runs ahead of
  time (hello-schedule's, a few minutes ahead), and a run waits in Scheduled or Pending until a
  worker starts it. Those runs are kept in the snapshot, but the statistics leave them out: they
  count the runs that started (a run waiting for a retry has, so it counts) or that ended without
  starting (e.g. cancelled before a worker took it). The file is opened
  only for the write and closed at once, because other processes (the next flow, your notebook) use
  the same file and DuckDB lets only one process write it at a time. While it writes, it holds the
  warehouse's writer lock (`workshop_lab.flow_tools.warehouse.writer_lock`): if the ELT pipeline is writing,
  this flow waits for it (and says so in its log) instead of failing on DuckDB's file lock.
- The result is published as artifacts on the run's page: a table (one row per flow) and a short
  markdown summary.

How to run it
- Make some history first (`./lab run hello-lab/hello-lab`, `./lab run retries/retries`, ...), then
  `./lab run workflow-analytics/workflow-analytics` and open the run's page → Artifacts, or the UI's
  Artifacts page → workflow-analytics.
- Query the warehouse yourself, once the run is done:
      ./lab sql "select * from prefect_history.flow_stats"
  (read-only, on either lab; it waits while a run is writing. The file is LAB_WAREHOUSE_PATH,
  `./lab status` shows it; any DuckDB client can open it while no run writes.)
- As a plain script against the lab's server: `.venv/bin/python flows/12_workflow_analytics.py`

Walkthrough
1. Page through flow runs, task runs and flows with `limit` + `offset`.
2. Write the history to three warehouse tables and compute per-flow statistics with SQL.
3. Publish the statistics as a table artifact and a markdown artifact.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import duckdb
from prefect import flow, get_client, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.client.schemas.sorting import FlowRunSort, TaskRunSort
from pydantic import Field

from workshop_lab.flow_tools.warehouse import writer_lock

# The lab sets LAB_WAREHOUSE_PATH for every process that runs flows; outside the lab, a temp file.
WAREHOUSE_PATH = Path(
    os.environ.get("LAB_WAREHOUSE_PATH", Path(tempfile.gettempdir()) / "workflow-lab" / "warehouse.duckdb")
)

# The most the API hands out per request: larger limits are refused with HTTP 422.
API_PAGE_LIMIT = 200


# ---------------------------------------------------------------------------------------------
# 1. Paging. `read_page(limit, offset)` is one API call; the loop moves `offset` until a page is
#    short. We sort by id, newest first: a run created while we page pushes the others one place
#    down, so the next page may repeat a run (we keep each id once) but never skips one.
#    Why these retry numbers: 2 retries 2 s apart cover a busy server; history does not change
#    meaning in 4 s.
# ---------------------------------------------------------------------------------------------
def read_all(read_page: Callable[[int, int], list[Any]], page_size: int, what: str) -> list[Any]:
    """Call read_page(limit, offset) page after page until a short page; each item once, by id."""
    seen: dict[Any, Any] = {}
    offset = 0
    while True:
        page = read_page(page_size, offset)
        seen.update((item.id, item) for item in page)
        print(f"{what}: offset {offset}, got {len(page)}")
        if len(page) < page_size:
            return list(seen.values())
        offset += page_size


def seconds(value: Any) -> float:
    """A duration as seconds (the API gives timedeltas)."""
    return value.total_seconds() if hasattr(value, "total_seconds") else float(value or 0)


@task(retries=2, retry_delay_seconds=2)
def fetch_flow_runs(page_size: int) -> list[dict[str, Any]]:
    """Every flow run in the API, with its flow's name, as plain rows."""
    with get_client(sync_client=True) as client:
        flows = {
            f.id: f.name
            for f in read_all(lambda limit, offset: client.read_flows(limit=limit, offset=offset), page_size, "flows")
        }
        runs = read_all(
            lambda limit, offset: client.read_flow_runs(limit=limit, offset=offset, sort=FlowRunSort.ID_DESC),
            page_size,
            "flow runs",
        )
    return [
        {
            "id": str(run.id),
            "flow_name": flows.get(run.flow_id, str(run.flow_id)),
            "deployment_id": str(run.deployment_id) if run.deployment_id else None,
            "state_type": run.state_type.value if run.state_type else None,
            "state_name": run.state_name,
            "run_count": run.run_count,
            "auto_scheduled": bool(run.auto_scheduled),
            "parent_task_run_id": str(run.parent_task_run_id) if run.parent_task_run_id else None,
            "expected_start_time": run.expected_start_time,
            "start_time": run.start_time,
            "end_time": run.end_time,
            "run_seconds": seconds(run.total_run_time),
        }
        for run in runs
    ]


@task(retries=2, retry_delay_seconds=2)
def fetch_task_runs(page_size: int) -> list[dict[str, Any]]:
    """Every task run in the API, as plain rows (run_count > 1 means the task was retried)."""
    with get_client(sync_client=True) as client:
        runs = read_all(
            lambda limit, offset: client.read_task_runs(limit=limit, offset=offset, sort=TaskRunSort.ID_DESC),
            page_size,
            "task runs",
        )
    return [
        {
            "id": str(run.id),
            "flow_run_id": str(run.flow_run_id) if run.flow_run_id else None,
            "name": run.name,
            "state_type": run.state_type.value if run.state_type else None,
            "run_count": run.run_count,
            "run_seconds": seconds(run.total_run_time),
        }
        for run in runs
    ]


# ---------------------------------------------------------------------------------------------
# 2. The warehouse. Raw history goes into prefect_history.flow_runs / task_runs (replaced each
#    run: the API is the source of truth, this is a snapshot of it, upcoming runs included); SQL
#    turns the runs that started into one row per flow in prefect_history.flow_stats. The
#    connection lives only inside this task.
#    Why these retry numbers: DuckDB lets one process write a file at a time; if another flow holds
#    it, 3 retries 2 s apart wait for it to let go.
# ---------------------------------------------------------------------------------------------
FLOW_STATS_SQL = """
create or replace table prefect_history.flow_stats as
with history as (
    -- Runs that have not started (Scheduled or Pending, no start_time yet) are the future, not
    -- history. AwaitingRetry is a Scheduled state too, but that run has a start_time.
    select * from prefect_history.flow_runs
    where start_time is not null or state_type not in ('SCHEDULED', 'PENDING')
),
task_retries as (
    select flow_run_id, sum(greatest(run_count - 1, 0)) as retries
    from prefect_history.task_runs
    group by flow_run_id
),
final as (
    select
        f.flow_name,
        count(*) as runs,
        count(*) filter (where f.state_type in ('COMPLETED', 'FAILED', 'CRASHED', 'CANCELLED')) as finished,
        count(*) filter (where f.state_type = 'COMPLETED') as completed,
        count(*) filter (where f.state_type in ('FAILED', 'CRASHED')) as failed,
        round(count(*) filter (where f.state_type = 'COMPLETED')
              / nullif(count(*) filter (where f.state_type in ('COMPLETED', 'FAILED', 'CRASHED', 'CANCELLED')), 0), 3) as success_rate,
        round(quantile_cont(f.run_seconds, 0.5) filter (where f.state_type = 'COMPLETED'), 2) as p50_seconds,
        round(quantile_cont(f.run_seconds, 0.9) filter (where f.state_type = 'COMPLETED'), 2) as p90_seconds,
        coalesce(sum(t.retries), 0)::integer as task_retries,
        sum(greatest(f.run_count - 1, 0))::integer as flow_retries
    from history as f
    left join task_retries as t on t.flow_run_id = f.id
    group by f.flow_name
)
select * from final order by runs desc, flow_name
"""


@task(retries=3, retry_delay_seconds=2)
def load_warehouse(flow_runs: list[dict[str, Any]], task_runs: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    """Replace the history tables in the DuckDB file, compute per-flow statistics, return them."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    # One writer at a time: wait for the lock, then open; both are released at the end of the block.
    with writer_lock(path, purpose="workflow-analytics: load_warehouse", log=print), duckdb.connect(path) as con:
        con.execute("create schema if not exists prefect_history")
        con.execute("""create or replace table prefect_history.flow_runs (
            id varchar primary key, flow_name varchar, deployment_id varchar, state_type varchar, state_name varchar,
            run_count integer, auto_scheduled boolean, parent_task_run_id varchar,
            expected_start_time timestamptz, start_time timestamptz, end_time timestamptz, run_seconds double)""")
        con.execute("""create or replace table prefect_history.task_runs (
            id varchar primary key, flow_run_id varchar, name varchar, state_type varchar, run_count integer, run_seconds double)""")
        if flow_runs:
            con.executemany(
                f"insert into prefect_history.flow_runs values ({', '.join('?' * len(flow_runs[0]))})",
                [list(row.values()) for row in flow_runs],
            )
        if task_runs:
            con.executemany(
                f"insert into prefect_history.task_runs values ({', '.join('?' * len(task_runs[0]))})",
                [list(row.values()) for row in task_runs],
            )
        con.execute(FLOW_STATS_SQL)
        result = con.execute("select * from prefect_history.flow_stats")
        columns = [column[0] for column in result.description]
        return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]


# ---------------------------------------------------------------------------------------------
# 3. The flow: read, load, publish. The artifacts are what a person reads; the warehouse tables
#    are what the next query (or a dashboard) reads.
# ---------------------------------------------------------------------------------------------
@flow(name="workflow-analytics", log_prints=True)
def workflow_analytics(
    page_size: Annotated[
        int, Field(ge=1, le=API_PAGE_LIMIT, description="Runs per API request (the API allows 200).")
    ] = API_PAGE_LIMIT,
) -> list[dict[str, Any]]:
    """Snapshot the lab's flow-run and task-run history into the warehouse and publish per-flow statistics."""
    flow_runs = fetch_flow_runs(page_size)
    task_runs = fetch_task_runs(page_size)
    stats = load_warehouse(flow_runs, task_runs, str(WAREHOUSE_PATH))

    create_table_artifact(
        key="workflow-analytics",
        table=stats,
        description="Per flow: runs that started (upcoming Scheduled/Pending runs left out), success rate, "
        "duration percentiles (completed runs) and retries.",
    )
    counted = sum(s["runs"] for s in stats)
    worst = min((s for s in stats if s["success_rate"] is not None), key=lambda s: s["success_rate"], default=None)
    slowest = max((s for s in stats if s["p90_seconds"] is not None), key=lambda s: s["p90_seconds"], default=None)
    create_markdown_artifact(
        key="workflow-analytics-summary",
        markdown="\n".join(
            [
                "# Workflow history",
                f"- {counted} flow runs of {len(stats)} flows, {len(task_runs)} task runs, "
                f"{sum(s['task_retries'] for s in stats)} task retries.",
                f"- Left out: {len(flow_runs) - counted} runs that have not started yet (Scheduled or Pending).",
                f"- Lowest success rate: **{worst['flow_name']}** ({worst['success_rate']:.0%} of {worst['finished']} finished runs)."
                if worst
                else "- No finished runs yet.",
                f"- Slowest at p90: **{slowest['flow_name']}** ({slowest['p90_seconds']} s)." if slowest else "",
                f"- Warehouse: `{WAREHOUSE_PATH}`, tables prefect_history.flow_runs, task_runs, flow_stats.",
            ]
        ),
        description="The workflow history in a few lines.",
    )
    print(
        f"{counted} flow runs counted ({len(flow_runs) - counted} not started yet, left out), "
        f"{len(task_runs)} task runs, {len(stats)} flows -> {WAREHOUSE_PATH}"
    )
    return stats


if __name__ == "__main__":
    workflow_analytics()
