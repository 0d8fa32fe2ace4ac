"""
# Exercise 08 · Dask: your starting point (flows/exercises/08_dask.md)

Copy it, then make `./lab check 08` pass:
    mkdir -p flows/mine && cp flows/exercises/starters/08_dask.py flows/mine/
    .venv/bin/python flows/mine/08_dask.py
    ./lab check 08
"""

from __future__ import annotations

import os

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect_dask import DaskTaskRunner

SCHEDULER_ADDRESS = os.environ.get("DASK_SCHEDULER_ADDRESS")


def score_customer(customer_id: int, rounds: int = 40_000) -> int:
    """About 5 ms of pure-Python work per customer (given: do not change it)."""
    score = customer_id
    for i in range(rounds):
        score = (score * 17 + i) % 99_991
    return score


@task(cache_policy=NO_CACHE, persist_result=False)
def score_one(customer_id: int) -> int:
    """Score one customer."""
    return score_customer(customer_id)


@flow(name="score-one-task-per-customer", task_runner=DaskTaskRunner(address=SCHEDULER_ADDRESS))
def score_each(customers: int = 200) -> int:
    """The obvious design: one task run per customer."""
    return sum(future.result() for future in score_one.map(list(range(customers))))


@flow(name="score-in-batches")
def score_in_batches(customers: int = 2000, batches: int = 4) -> int:
    """A few task runs, each scoring one batch of customers."""
    # TODO: on the lab's Dask cluster; deal the customers into `batches` batches, one task run each
    return sum(score_customer(customer_id) for customer_id in range(customers))


@flow(name="score-with-dask-client")
def score_fanned_out(customers: int = 2000) -> int:
    """One task run; Dask does the fan-out."""
    raise NotImplementedError("TODO: one task run that fans out with get_dask_client() and client.map")


if __name__ == "__main__":
    score_in_batches(200)
