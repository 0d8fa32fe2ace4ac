"""
# Solution 15 · Resources going down: a load that is safe to run twice

Two changes to the starting point make a crash at any moment harmless:
- the table has a key (`customer_id primary key`) and the load merges on it (`insert or replace`):
  a customer loaded by the crashed run and again by the rerun is one row, with the upstream's values;
- each batch is one transaction (`begin` ... `commit`): a process killed before the commit leaves
  nothing of that batch (DuckDB drops the uncommitted transaction), so the table only ever holds
  whole batches.

How to run it, with the lab up: `.venv/bin/python flows/exercises/solutions/15_resources_going_down_solution.py 3`
(dies halfway through batch 3), then again without the 3; or `./lab check 15 --file` this file.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import duckdb
import httpx
from prefect import flow, task
from pydantic import Field

from workshop_lab.flow_tools.warehouse import warehouse_path, writer_lock

UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")

# The table the check reads, with the key the load merges on.
CREATE_TABLE = """
create schema if not exists exercise;
create table if not exists exercise.customers (
    customer_id integer primary key,
    name varchar,
    email varchar,
    country varchar,
    signed_up_at varchar
)"""
# A customer that is already there is replaced (by the same record: the upstream is deterministic), never added twice.
UPSERT = "insert or replace into exercise.customers values (?, ?, ?, ?, ?)"


def crash_midway(crash: bool, written: int, batch: list[dict[str, Any]]) -> None:
    """The check's simulated crash: halfway through the batch, SIGKILL this process, as
    `./lab chaos kill prefect-worker` does to a flow run's process. Nothing after it runs: no
    except, no finally, no commit. Keep the call where it is, after a row is written and before
    the batch is committed."""
    if crash and written == len(batch) // 2:
        print(
            f"simulated crash: killing this process (pid {os.getpid()}) after {written} of the batch's {len(batch)} rows",
            flush=True,
        )
        os.kill(os.getpid(), signal.SIGKILL)


# Why these numbers: as module 01, 3 retries 1 s apart ride out an upstream blip.
@task(retries=3, retry_delay_seconds=1)
def fetch_customers(page: int, page_size: int) -> list[dict[str, Any]]:
    """One page of customers from the upstream; raise on an HTTP error so Prefect retries."""
    response = httpx.get(f"{UPSTREAM_URL}/customers", params={"page": page, "page_size": page_size}, timeout=5)
    response.raise_for_status()
    return response.json()["records"]


# Why these numbers: if another flow holds the warehouse, 3 retries 2 s apart wait for it.
@task(retries=3, retry_delay_seconds=2)
def load_batch(records: list[dict[str, Any]], path: str, crash: bool) -> int:
    """Merge one batch of customers into exercise.customers, in one transaction."""
    with writer_lock(path, purpose="load-customers", log=print), duckdb.connect(path) as con:
        con.execute(CREATE_TABLE)
        # One transaction per batch: all of its rows, or (the process died before the commit) none.
        con.execute("begin transaction")
        for written, customer in enumerate(records, start=1):
            con.execute(
                UPSERT,
                [
                    customer["customer_id"],
                    customer.get("name"),
                    customer.get("email"),
                    customer.get("country"),
                    customer.get("signed_up_at"),
                ],
            )
            crash_midway(crash, written, records)
        con.execute("commit")
    return len(records)


@task
def table_counts(path: str) -> str:
    """What exercise.customers holds now: rows and distinct customers (read under the writer lock)."""
    if not Path(path).exists():
        return "no warehouse yet"
    with (
        writer_lock(path, purpose="load-customers: table_counts", log=print),
        duckdb.connect(path, read_only=True) as con,
    ):
        try:
            rows, customers = con.execute(
                "select count(*), count(distinct customer_id) from exercise.customers"
            ).fetchone()
        except duckdb.CatalogException:
            return "no table exercise.customers yet"
    return f"{rows} rows for {customers} customers" + (
        f", {rows - customers} of them duplicates" if rows > customers else ""
    )


@flow(name="load-customers", log_prints=True)
def load_customers(
    batch_size: Annotated[int, Field(ge=1, le=500, description="Customers per batch (upstream page).")] = 100,
    crash_in_batch: Annotated[
        int, Field(ge=0, description="Kill this process halfway through that batch (0: never).")
    ] = 0,
) -> int:
    """Load every customer of the upstream into exercise.customers, a batch at a time; return how many were fetched."""
    path = str(warehouse_path())
    print(f"before: exercise.customers has {table_counts(path)}")
    fetched, page = 0, 1
    while True:
        records = fetch_customers(page, batch_size)
        if not records:
            break
        load_batch(records, path, crash=page == crash_in_batch)
        fetched += len(records)
        print(f"batch {page}: {len(records)} customers loaded ({fetched} so far)")
        page += 1
    print(f"after: exercise.customers has {table_counts(path)} (the upstream has {fetched})")
    return fetched


if __name__ == "__main__":
    # `... 15_resources_going_down.py 3` crashes in batch 3; without a number, no crash.
    load_customers(crash_in_batch=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
