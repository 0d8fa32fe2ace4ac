"""
# Solution 00 · Hello, lab: squares on the Dask cluster, and a table of who did each

How to run it: `.venv/bin/python flows/exercises/solutions/00_hello_lab_solution.py` with the lab
up (it reads DASK_SCHEDULER_ADDRESS; without it the flow starts a throwaway local cluster).
Then open the run in the UI: one task run per item, and the `hello-squares` artifact.
"""

from __future__ import annotations

import os

from distributed import get_worker
from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect_dask import DaskTaskRunner

SCHEDULER_ADDRESS = os.environ.get("DASK_SCHEDULER_ADDRESS")


@task
def square(item: int) -> dict[str, int | str]:
    """Square one number and say which Dask worker did it."""
    return {"item": item, "square": item * item, "dask_worker": get_worker().address}


@flow(name="hello-squares", task_runner=DaskTaskRunner(address=SCHEDULER_ADDRESS), log_prints=True)
def hello_squares(items: int = 6) -> list[dict[str, int | str]]:
    """One task run per item on the lab's Dask cluster; a table of the results."""
    rows = [future.result() for future in square.map(list(range(items)))]
    create_table_artifact(
        key="hello-squares", table=rows, description="Each item's square and the Dask worker that computed it."
    )
    print(f"{len(rows)} squares from {len({r['dask_worker'] for r in rows})} Dask worker(s)")
    return rows


if __name__ == "__main__":
    hello_squares()
