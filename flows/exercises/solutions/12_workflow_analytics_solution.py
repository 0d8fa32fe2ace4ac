"""
Solution to exercise 12 · Analytics on workflow history: incremental, and asking your own questions.

Run `workflow-analytics` first (it creates the warehouse tables), then this, twice:
    .venv/bin/python flows/exercises/solutions/12_workflow_analytics_solution.py

Answer to step 4: a run loaded while it was Running keeps that state in the warehouse, because its
start_time is older than the watermark and the next increment never asks for it again. Fix: on
each increment also reload the runs the warehouse still holds in a non-final state, by id
(`FlowRunFilter(id=FlowRunFilterId(any_=[...]))`), or keep a periodic full snapshot (module 12).
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
from prefect import flow, get_client, task
from prefect.artifacts import create_table_artifact
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime
from prefect.client.schemas.sorting import FlowRunSort
from prefect.variables import Variable

WAREHOUSE_PATH = Path(
    os.environ.get("LAB_WAREHOUSE_PATH", Path(tempfile.gettempdir()) / "workflow-lab" / "warehouse.duckdb")
)
WATERMARK = "workflow-history-watermark"
PAGE = 200  # the API's largest page

HOTSPOTS_SQL = """
select regexp_replace(name, '-[0-9a-f]{3}$', '') as task, count(*) as retried_runs, sum(run_count - 1) as retries
from prefect_history.task_runs
where run_count > 1
group by task
order by retries desc, task
limit 10
"""


# Why these numbers: 2 retries 2 s apart cover a busy API server.
@task(retries=2, retry_delay_seconds=2)
def new_flow_runs(after: str | None) -> list[dict[str, Any]]:
    """Flow runs that started after the watermark (all started runs if there is none), page by page."""
    run_filter = FlowRunFilter(
        start_time=FlowRunFilterStartTime(after_=datetime.fromisoformat(after) if after else None, is_null_=False)
    )
    runs: dict[Any, Any] = {}
    with get_client(sync_client=True) as client:
        flows = {f.id: f.name for f in client.read_flows(limit=PAGE)}  # fine for a lab with < 200 flows
        offset = 0
        while True:
            page = client.read_flow_runs(
                flow_run_filter=run_filter, sort=FlowRunSort.ID_DESC, limit=PAGE, offset=offset
            )
            runs.update((r.id, r) for r in page)
            if len(page) < PAGE:
                break
            offset += PAGE
    return [
        {
            "id": str(r.id),
            "flow_name": flows.get(r.flow_id, str(r.flow_id)),
            "deployment_id": str(r.deployment_id) if r.deployment_id else None,
            "state_type": r.state_type.value if r.state_type else None,
            "state_name": r.state_name,
            "run_count": r.run_count,
            "auto_scheduled": bool(r.auto_scheduled),
            "parent_task_run_id": str(r.parent_task_run_id) if r.parent_task_run_id else None,
            "expected_start_time": r.expected_start_time,
            "start_time": r.start_time,
            "end_time": r.end_time,
            "run_seconds": r.total_run_time.total_seconds(),
        }
        for r in runs.values()
    ]


# Why these numbers: another process may hold the DuckDB file for a moment; wait for it 3 x 2 s.
@task(retries=3, retry_delay_seconds=2)
def upsert_and_query(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Upsert the new runs into prefect_history.flow_runs, then ask which task names retry most."""
    with duckdb.connect(str(WAREHOUSE_PATH)) as con:
        if rows:
            con.executemany(
                f"insert or replace into prefect_history.flow_runs values ({', '.join('?' * len(rows[0]))})",
                [list(r.values()) for r in rows],
            )
        result = con.execute(HOTSPOTS_SQL)
        columns = [c[0] for c in result.description]
        return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]


@flow(name="history-increment", log_prints=True)
def history_increment() -> int:
    """Load only the flow runs that started since the last increment, and publish the retry hotspots."""
    watermark = Variable.get(WATERMARK, default=None)
    rows = new_flow_runs(watermark)
    hotspots = upsert_and_query(rows)
    if rows:
        Variable.set(WATERMARK, max(r["start_time"] for r in rows).isoformat(), overwrite=True)
    create_table_artifact(
        key="retry-hotspots",
        table=hotspots or [{"task": "(no retries yet)", "retried_runs": 0, "retries": 0}],
        description="Task names whose runs were retried most.",
    )
    print(f"loaded {len(rows)} flow runs started after {watermark or 'the beginning'}; top retried: {hotspots[:3]}")
    return len(rows)


if __name__ == "__main__":
    history_increment()
