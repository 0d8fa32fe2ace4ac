"""
# Exercise 00 · Hello, lab: your starting point (flows/exercises/00_hello_lab.md)

Copy it, then make `./lab check 00` pass:
    mkdir -p flows/mine && cp flows/exercises/starters/00_hello_lab.py flows/mine/
    .venv/bin/python flows/mine/00_hello_lab.py     # run it on the lab
    ./lab check 00                                  # check it
"""

from __future__ import annotations

import os

from prefect import flow, task

SCHEDULER_ADDRESS = os.environ.get("DASK_SCHEDULER_ADDRESS")  # the lab's Dask scheduler


@task
def square(item: int) -> dict[str, int | str]:
    """Square one number and say which Dask worker did it."""
    # TODO: the square, and the address of the Dask worker running this (distributed.get_worker())
    return {"item": item}


# TODO: run the tasks on the lab's Dask cluster (a task_runner)
@flow(name="hello-squares", log_prints=True)
def hello_squares(items: int = 6) -> list[dict[str, int | str]]:
    """One task run per item on the lab's Dask cluster; a table of the results."""
    rows = [square(item) for item in range(items)]  # TODO: one task run per item, all at once (.map)
    # TODO: publish the rows as a table artifact with the key "hello-squares"
    return rows


if __name__ == "__main__":
    hello_squares()
