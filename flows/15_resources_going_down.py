"""
# 15 · Resources going down: a worker dies mid-load, and the data comes out right anyway

Course section 1, part 2. The course opens on "failures such as resources going down"; module 01
shows the failures a flow can catch itself (an API that answers 503, malformed records). This one
shows the failure no code inside the flow can catch: the process running it dies. It is numbered
15 because it was added after the other modules (renumbering them would break every link and
learner file); teach it right after module 01.

What you will learn
- A killed process raises nothing: no `except`, no task retry, no `finally` runs. The flow run just
  stops talking. Prefect hears that as silence: a running flow sends a heartbeat every 30 s, and
  the lab's automation `crashed-when-heartbeats-stop` marks a run CRASHED when
  LAB_CRASHED_AFTER_SECONDS (75 s by default) pass without one. CRASHED is not FAILED: FAILED means
  your code raised; CRASHED means the infrastructure went away under it.
- The lab then brings the resource back: its watchdog restarts the killed worker within seconds
  (`./lab status` counts the restarts and shows the last exit, SIGKILL).
- And it runs the work again, but only where that is safe: deployments tagged `rerun-on-crash`
  (flows/prefect.yaml) are queued again once by the automation `rerun-crashed-flow-runs`: the same
  flow run, Running → Crashed → AwaitingRetry → Running → Completed, run count 2.
- Why running it again is safe *here*: the load is idempotent. Every batch is merged on the
  record's key (`insert or replace` on `order_id`, the table's primary key), so a batch loaded
  by the crashed attempt and again by the rerun is one row per order, not two; and each batch is
  written in one transaction, so a process killed mid-batch leaves whole batches, never half of
  one (DuckDB drops an uncommitted transaction when its process dies). A plain `insert` into a
  table without a key would have doubled every row the first attempt loaded, silently (with a
  key, it would fail the rerun on the first duplicate): such a load must never carry
  `rerun-on-crash`. Exercise 15 is exactly that bug, and its fix.

How to run it (two terminals, both in the repository's folder)
- Terminal 1: `./lab run resources-going-down/resources-going-down`. It loads 1,000 orders from
  the lab's upstream in 10 batches of 100, pausing 3 s between batches (about 30 s in all), into
  `resilience.orders` of the lab's DuckDB warehouse. Its log says which batch it is on. (Too
  quick to catch? Give it `--param seconds_per_batch=6`.)
- Terminal 2, while batches are loading: `./lab chaos kill prefect-worker`. The worker and the
  flow-run process it started die together, as in a crash (SIGKILL). Then `./lab status`:
  prefect-worker is healthy again after a second or two, with "restarts 1, last exit SIGKILL".
- Terminal 1 goes quiet (the UI still says Running: nobody told the server), then, at most
  LAB_CRASHED_AFTER_SECONDS after the kill, prints "state: CRASHED — No heartbeat for 75 s ...",
  follows the rerun (SCHEDULED (AwaitingRetry), RUNNING; its log starts "attempt 2 of this flow
  run") and ends "COMPLETED", about two minutes after the kill. The rerun's batches 1-3 replace
  rows the crashed attempt had loaded: its log's count of this run's rows stays put until then. In the UI: the run's page shows that state history (Running → Crashed →
  AwaitingRetry → Running → Completed) and Run Count 2; Automations lists
  `crashed-when-heartbeats-stop`, `rerun-crashed-flow-runs` and `notify-on-failed-flow-runs`, and
  the inbox (http://localhost:8701; `./lab up` prints its address if INBOX_PORT moved it) has a
  message "Flow run resources-going-down/... crashed" with the reason.
- See the rows reconcile. Each row says which flow run loaded it last, and in which attempt.
  Between the crash and the rerun, the crashed run (its name is in terminal 1's first line) has
  whole batches, a multiple of 100 rows; after the rerun it has every order once, all of them
  loaded again by attempt 2 (`run_count` 2), and no order has two rows:
      ./lab sql "select flow_run_name, run_count, count(*) as rows, count(distinct order_id) as orders from resilience.orders group by all order by all"
- A Dask worker is a resource too: start `./lab run dask-crunch/dask-crunch --param chunks=300`,
  then, about 10 s after it prints "state: RUNNING" (while both batches crunch: their log lines come
  only when they finish), `./lab chaos kill dask-worker-1`. The flow's own process lives, so nothing
  crashes: Dask hands the lost worker's tasks to the other worker, the watchdog brings the killed
  one back, and the run COMPLETES with the right checksums.

Walkthrough
1. Extract one batch from the upstream (retried: an API blip is not a crash).
2. Load it: one transaction per batch, merged on the key, under the warehouse's writer lock.
3. The flow: batches one after another, a pause between them to kill the worker in, then
   reconcile (every order of the range exactly once) and publish a summary artifact.
"""

from __future__ import annotations

import os
import time
from typing import Annotated, Any

import duckdb
import httpx
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from pydantic import Field

from workshop_lab.flow_tools.warehouse import warehouse_path, writer_lock

UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")
TABLE = "resilience.orders"


# ---------------------------------------------------------------------------------------------
# 1. Extract: batch N is page N of the upstream's orders. The upstream is deterministic (the same
#    page gives the same records), so the rerun after a crash fetches exactly what the first
#    attempt fetched: what makes replacing a row with itself harmless.
#    Why these numbers: as module 01, 3 retries 1 s apart ride out a blip of a request or two; the
#    client's 5 s timeout turns a hung request into an error Prefect can retry. Neither helps when
#    the process dies: that is the heartbeat automation's job.
#    NO_CACHE, here and below: every attempt does all of its work again, so the rerun's
#    correctness rests on the load being idempotent, not on a cache remembering what was done.
# ---------------------------------------------------------------------------------------------
@task(retries=3, retry_delay_seconds=1, cache_policy=NO_CACHE)
def fetch_batch(batch: int, batch_size: int) -> list[dict[str, Any]]:
    """One batch of orders: page `batch` of the upstream's /orders; raise on an HTTP error so Prefect retries."""
    response = httpx.get(f"{UPSTREAM_URL}/orders", params={"page": batch, "page_size": batch_size}, timeout=5)
    response.raise_for_status()
    return response.json()["records"]


# ---------------------------------------------------------------------------------------------
# 2. Load. Two properties make a crash at any moment harmless:
#    - idempotent: `insert or replace` on the primary key. A row that is already there (loaded by
#      the crashed attempt, or by yesterday's run) is replaced by the same order, never duplicated;
#    - atomic per batch: `begin` ... `commit`. A process killed between them leaves nothing of the
#      batch behind; the rerun loads it whole.
#    The writer lock (workshop_lab.flow_tools.warehouse) lets one process write the file at a time; the kernel
#    releases it when its holder dies, so a killed run never leaves the warehouse locked. It is held
#    only while writing, not during the pause, so `./lab sql` can look in between batches.
#    A malformed field (module 01's chaos) lands as NULL (try_cast): this module is about crashes;
#    module 01 shows how to quarantine bad records instead.
#    Why these retry numbers: if another flow holds the warehouse, 3 retries 2 s apart wait for it.
# ---------------------------------------------------------------------------------------------
CREATE_TABLE = f"""
create schema if not exists resilience;
create table if not exists {TABLE} (
    order_id integer primary key,  -- the key the load merges on
    customer_id integer,
    amount double,
    status varchar,
    ordered_at timestamptz,
    batch integer,                 -- which batch (upstream page) loaded it
    flow_run_name varchar,         -- which flow run loaded it last (the name ./lab run prints) ...
    run_count integer,             -- ... and in which attempt: 2 = the rerun after a crash
    loaded_at timestamptz
)"""
ROW = "(?, ?, try_cast(?::varchar as double), ?, try_cast(?::varchar as timestamptz), ?, ?, ?, now())"


def upsert_sql(rows: int) -> str:
    """One `insert or replace` of `rows` rows (a single statement: ten times faster than executemany)."""
    return f"insert or replace into {TABLE} values " + ", ".join([ROW] * rows)


@task(retries=3, retry_delay_seconds=2, cache_policy=NO_CACHE)
def load_batch(batch: int, records: list[dict[str, Any]], path: str) -> int:
    """Merge one batch into resilience.orders in one transaction; return how many rows this flow run has there."""
    attempt, run_name = flow_run.run_count, flow_run.name
    rows = [
        [
            r["order_id"],
            r.get("customer_id"),
            r.get("amount"),
            r.get("status"),
            r.get("ordered_at"),
            batch,
            run_name,
            attempt,
        ]
        for r in records
    ]
    with writer_lock(path, purpose=f"resources-going-down: batch {batch}", log=print), duckdb.connect(path) as con:
        con.execute(CREATE_TABLE)
        con.execute("begin transaction")
        if rows:
            con.execute(upsert_sql(len(rows)), [value for row in rows for value in row])
        con.execute("commit")
        return con.execute(f"select count(*) from {TABLE} where flow_run_name = ?", [run_name]).fetchone()[0]


@task(cache_policy=NO_CACHE)
def reconcile(path: str, expected: int) -> dict[str, Any]:
    """Count the table's rows for orders 1..expected: every order exactly once, or fail."""
    with writer_lock(path, purpose="resources-going-down: reconcile", log=print), duckdb.connect(path) as con:
        rows, orders, attempts = con.execute(
            f"select count(*), count(distinct order_id), coalesce(max(run_count), 0) from {TABLE} "
            "where order_id between 1 and ?",
            [expected],
        ).fetchone()
    summary = {"expected": expected, "rows": rows, "distinct_orders": orders, "latest_attempt": attempts}
    if not rows == orders == expected:
        raise ValueError(f"{TABLE} does not reconcile: {summary}")
    return summary


# ---------------------------------------------------------------------------------------------
# 3. The flow. The pause stands for the slow part of a real load (a big extract, a transform); it
#    is the window in which to kill the worker. After the last batch: reconcile, then publish.
# ---------------------------------------------------------------------------------------------
@flow(name="resources-going-down", log_prints=True)
def resources_going_down(
    batches: Annotated[int, Field(ge=1, le=50, description="How many batches (upstream pages) to load.")] = 10,
    batch_size: Annotated[int, Field(ge=1, le=500, description="Orders per batch.")] = 100,
    seconds_per_batch: Annotated[
        float, Field(ge=0, le=60, description="The pause after each batch: time to kill the worker mid-run.")
    ] = 3.0,
) -> dict[str, Any]:
    """Load orders in batches into resilience.orders, idempotently, slowly enough to kill the worker mid-run."""
    path = str(warehouse_path())
    attempt = flow_run.run_count
    print(
        f"attempt {attempt} of this flow run"
        + (" (the rerun after a crash: it loads every batch again)" if attempt > 1 else "")
        + f": {batches} batches of {batch_size} orders into {TABLE}, {seconds_per_batch:g} s apart"
    )
    loaded = 0
    for batch in range(1, batches + 1):
        records = fetch_batch(batch, batch_size)
        mine = load_batch(batch, records, path)
        loaded += len(records)
        print(
            f"batch {batch}/{batches} committed: orders {(batch - 1) * batch_size + 1}-{(batch - 1) * batch_size + len(records)}; "
            f"{mine} rows of {TABLE} are this run's ({flow_run.name})"
        )
        if batch < batches and seconds_per_batch:
            time.sleep(seconds_per_batch)

    summary = reconcile(path, loaded)
    create_markdown_artifact(
        key="resources-going-down",
        description="What the load left in the warehouse.",
        markdown="\n".join(
            [
                "# Resources going down",
                f"- Attempt **{attempt}** of this flow run loaded {loaded} orders in {batches} batches.",
                f"- `{TABLE}` holds **{summary['rows']}** rows for those orders, **{summary['distinct_orders']}** distinct: every order once.",
                "- A rerun after a crash replaced the rows the first attempt had loaded (`run_count` 2) instead of adding to them.",
                f"- Warehouse: `{path}`.",
            ]
        ),
    )
    print(
        f"reconciled: {summary['rows']} rows, {summary['distinct_orders']} distinct orders of {loaded} loaded (attempt {attempt})"
    )
    return summary


if __name__ == "__main__":
    resources_going_down()
