"""
# 00 · Hello, lab: your first flow on the worker and the Dask cluster

What you will learn
- A *flow* is a Python function Prefect tracks; *tasks* are the steps inside it.
- A *task runner* decides where tasks execute. Here `DaskTaskRunner` sends them to the lab's Dask
  cluster, so each task runs in a Dask worker process, not in the flow's own process.
- A *deployment* (see `prefect.yaml`) lets the lab's worker run the flow when you click "Run".

How to run it
- From the UI: http://localhost:4200 → Deployments → hello-lab → Run → Quick run.
- From a terminal: `./lab run hello-lab/hello-lab`
- As a plain script: `.venv/bin/python flows/00_hello_lab.py`. The flow runs in your terminal, its
  tasks on the lab's Dask cluster, and the run shows in the lab's UI: the lab's venv points every
  Python process at the running lab (README: "Your own code").

`./lab up` runs this flow once so you know the whole lab works.
"""

from __future__ import annotations

import os
import socket

from distributed import get_worker
from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect_dask import DaskTaskRunner

# The lab sets DASK_SCHEDULER_ADDRESS for every process that runs flows: its worker, its Dask
# workers, and any process of the lab's venv (your shell's `.venv/bin/python`). A Python without
# it (another venv, nothing exported) gets a throwaway local Dask cluster instead.
SCHEDULER_ADDRESS = os.environ.get("DASK_SCHEDULER_ADDRESS")


# ---------------------------------------------------------------------------------------------
# A task: one small unit of work. It reports where it ran so you can see Dask at work.
# ---------------------------------------------------------------------------------------------
@task
def where_am_i(item: int) -> dict[str, str | int]:
    """Square a number and report which Dask worker process did it."""
    return {
        "item": item,
        "square": item * item,
        "dask_worker": get_worker().address,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }


# ---------------------------------------------------------------------------------------------
# The flow: `.map` submits one task run per item to the Dask cluster; `.result()` gathers them.
# The table artifact shows up on the flow run's page under "Artifacts".
# ---------------------------------------------------------------------------------------------
@flow(name="hello-lab", task_runner=DaskTaskRunner(address=SCHEDULER_ADDRESS), log_prints=True)
def hello_lab(items: int = 4) -> list[dict[str, str | int]]:
    """Map a few tasks onto the lab's Dask cluster and record which worker ran each."""
    futures = where_am_i.map(list(range(items)))
    rows = [future.result() for future in futures]
    workers = sorted({str(row["dask_worker"]) for row in rows})
    create_table_artifact(key="hello-lab-workers", table=rows, description="Which Dask worker ran each task.")
    print(f"{len(rows)} tasks ran on {len(workers)} Dask worker(s): {', '.join(workers)}")
    return rows


if __name__ == "__main__":
    hello_lab()
