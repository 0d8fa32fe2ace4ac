"""Module 08 (Dask) on the real embedded lab: the dask-crunch deployment, run by the lab's worker,
COMPLETES; its task runs ran on the lab's Dask workers (each records get_worker().address); and
mapping was depth-first (a check-batch run started before the last crunch-batch run ended)."""

from __future__ import annotations

from datetime import datetime

import pytest

pytestmark = pytest.mark.stack


def when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_dask_crunch_runs_on_the_lab_cluster_depth_first(embedded_lab) -> None:
    # Three batches on two single-threaded workers: the third crunch must wait for a free worker,
    # and a check of a finished batch runs beside it. (With two equal batches both crunches end
    # together, and whether a check starts "before the last crunch ends" is a coin toss.)
    run = embedded_lab.run_deployment("dask-crunch/dask-crunch", {"chunks": 30, "batches": 3})
    assert run["state"]["type"] == "COMPLETED", run["state"]

    # Every batch was crunched and checked by one of the lab's two Dask workers, not by the flow process.
    rows = embedded_lab.table_artifact(run["id"], "dask-crunch-workers")
    assert sum(row["chunks"] for row in rows) == 30, rows
    lab_workers = set(embedded_lab.dask_workers())
    assert len(lab_workers) == 2, lab_workers
    assert {row["dask_worker"] for row in rows} | {row["checked_on"] for row in rows} <= lab_workers, (
        rows,
        lab_workers,
    )

    task_runs = embedded_lab.task_runs(run["id"])
    assert all(t["state"]["type"] == "COMPLETED" for t in task_runs), [
        (t["name"], t["state"]["type"]) for t in task_runs
    ]
    crunches = [t for t in task_runs if t["name"].startswith("crunch-batch")]
    checks = [t for t in task_runs if t["name"].startswith("check-batch")]
    assert len(crunches) == len(checks) == 3, [t["name"] for t in task_runs]

    # Depth-first: downstream work began before the whole upstream map was done.
    last_crunch_end = max(when(t["end_time"]) for t in crunches)
    first_check_start = min(when(t["start_time"]) for t in checks)
    assert first_check_start < last_crunch_end, (first_check_start, last_crunch_end)
    # And each check ran only after its own batch existed (it was mapped over the crunch futures).
    assert first_check_start >= min(when(t["end_time"]) for t in crunches)
