"""
# Exercise 12 · Analytics on workflow history: your starting point (flows/exercises/12_workflow_analytics.md)

Run `./lab run workflow-analytics/workflow-analytics` first (it creates the warehouse tables). Then
copy this, and make `./lab check 12` pass:
    mkdir -p flows/mine && cp flows/exercises/starters/12_workflow_analytics.py flows/mine/
    .venv/bin/python flows/mine/12_workflow_analytics.py
    ./lab check 12
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import duckdb
from prefect import flow, get_client, task

WAREHOUSE_PATH = Path(
    os.environ.get("LAB_WAREHOUSE_PATH", Path(tempfile.gettempdir()) / "workflow-lab" / "warehouse.duckdb")
)
WATERMARK = "workflow-history-watermark"  # the Prefect Variable that keeps the watermark
PAGE = 200  # the API's largest page


# Why these numbers: 2 retries 2 s apart cover a busy API server.
@task(retries=2, retry_delay_seconds=2)
def new_flow_runs(after: str | None) -> list[dict[str, Any]]:
    """Flow runs that started after the watermark (all started runs if there is none), page by page."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(limit=PAGE)  # TODO: only those started after `after`; page with offset
    return [{"id": str(r.id), "start_time": r.start_time} for r in runs]


@task(retries=3, retry_delay_seconds=2)
def upsert(rows: list[dict[str, Any]]) -> int:
    """Upsert the new runs into prefect_history.flow_runs."""
    with duckdb.connect(str(WAREHOUSE_PATH), read_only=True) as con:  # TODO: write (insert or replace)
        return con.execute("select count(*) from prefect_history.flow_runs").fetchone()[0]


@flow(name="history-increment", log_prints=True)
def history_increment() -> int:
    """Load only the flow runs that started since the last increment, and publish the retry hotspots."""
    rows = new_flow_runs(None)  # TODO: read the watermark Variable; set it after loading
    upsert(rows)
    # TODO: the table artifact "retry-hotspots": which task names were retried most
    return len(rows)


if __name__ == "__main__":
    history_increment()
