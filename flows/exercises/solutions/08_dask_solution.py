"""
# Solution 08 · Dask: make the cluster pay for itself

How to run it: `.venv/bin/python flows/exercises/solutions/08_dask_solution.py` with the lab up
(it reads DASK_SCHEDULER_ADDRESS; without it each flow run starts a throwaway local cluster).

Scores customers with a CPU-heavy pure-Python function four ways and prints the time of each:
one task run per customer on one thread (sequential) and on Dask (the obvious, slow design),
a few batch task runs on Dask, and one task run that fans out with plain Dask (get_dask_client).
"""

from __future__ import annotations

import os
import sys
import time

import cloudpickle
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from prefect_dask import DaskTaskRunner, get_dask_client

SCHEDULER_ADDRESS = os.environ.get("DASK_SCHEDULER_ADDRESS")

# `score_customer` is a plain function the tasks call: without this it would travel to the Dask
# workers by name, and they cannot import a file from flows/ ("No module named ...").
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def score_customer(customer_id: int, rounds: int = 40_000) -> int:
    """About 5 ms of pure-Python work per customer."""
    score = customer_id
    for i in range(rounds):
        score = (score * 17 + i) % 99_991
    return score


# ---------------------------------------------------------------------------------------------
# The obvious design: one task run per customer. No network, no retries. NO_CACHE and
# persist_result=False trim what each task run costs, but cannot make it free.
# ---------------------------------------------------------------------------------------------
@task(cache_policy=NO_CACHE, persist_result=False)
def score_one(customer_id: int) -> int:
    """Score one customer."""
    return score_customer(customer_id)


@flow(name="score-one-task-per-customer", task_runner=DaskTaskRunner(address=SCHEDULER_ADDRESS))
def score_each(customers: int = 200) -> int:
    """One task run per customer."""
    return sum(future.result() for future in score_one.map(list(range(customers))))


# ---------------------------------------------------------------------------------------------
# The fix: a few task runs with a batch each. A small multiple of the cluster's 2 threads.
# ---------------------------------------------------------------------------------------------
@task(cache_policy=NO_CACHE, persist_result=False)
def score_batch(customer_ids: list[int]) -> int:
    """Score a whole batch of customers in one task run."""
    return sum(score_customer(customer_id) for customer_id in customer_ids)


@flow(name="score-in-batches", task_runner=DaskTaskRunner(address=SCHEDULER_ADDRESS))
def score_in_batches(customers: int = 2000, batches: int = 4) -> int:
    """A few task runs, each scoring one batch of customers."""
    dealt = [list(range(start, customers, batches)) for start in range(batches)]
    return sum(future.result() for future in score_batch.map(dealt))


# ---------------------------------------------------------------------------------------------
# Plain Dask inside one task run: Dask's own per-item cost is about a millisecond, so fine-grained
# items are fine here; the Prefect UI shows one task run for the whole step.
# ---------------------------------------------------------------------------------------------
@task(cache_policy=NO_CACHE, persist_result=False)
def score_with_dask(customers: int) -> int:
    """Fan the customers out with plain Dask from inside one task run."""
    with get_dask_client() as client:
        return sum(client.gather(client.map(score_customer, list(range(customers)), pure=False)))


@flow(name="score-with-dask-client", task_runner=DaskTaskRunner(address=SCHEDULER_ADDRESS))
def score_fanned_out(customers: int = 2000) -> int:
    """One task run; Dask does the fan-out."""
    return score_with_dask.submit(customers).result()


@flow(name="score-customers-compared", log_prints=True)
def compare(customers: int = 200) -> dict[str, float]:
    """Time every design on the same customers."""
    variants = {
        "one task per customer, sequential": lambda: score_each.with_options(
            task_runner=ThreadPoolTaskRunner(max_workers=1)
        )(customers),
        "one task per customer, Dask": lambda: score_each(customers),
        "4 batches, Dask": lambda: score_in_batches(customers, 4),
        "1 task + get_dask_client": lambda: score_fanned_out(customers),
    }
    times = {}
    for label, run in variants.items():
        started = time.perf_counter()
        run()
        times[label] = round(time.perf_counter() - started, 2)
        print(f"{label:<36} {times[label]:7.2f} s")
    return times


if __name__ == "__main__":
    compare()
