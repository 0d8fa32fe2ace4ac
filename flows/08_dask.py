"""
# 08 · Dask: spread CPU-bound work over a cluster, and pay for it wisely

What you will learn
- What Dask is: a *scheduler* that hands out work and *workers* (separate processes, possibly on
  other machines) that run it. The lab runs one scheduler and 2 workers with 1 thread each, so
  two pieces of Python run truly in parallel — no GIL between them, unlike threads.
- The same CPU-bound workload run three ways: sequentially, on threads (`ThreadPoolTaskRunner`:
  no faster, the GIL lets one thread run Python at a time) and on the lab's Dask cluster
  (`DaskTaskRunner(address=...)`: faster, two processes work at once).
- Why Prefect-on-Dask can make things *slower*, and the design that fixes it. Every Prefect task
  run on Dask costs bookkeeping. Profiled (bench/dask_overhead.py), stock Prefect 3.9 spends most of
  it on settings: the flow process serializes every setting for each submission, and the Dask
  worker rebuilds them (re-reading the environment and config files) for each task run: about
  0.14 s per task run here, against about 3 ms for a plain Dask task. Next came Dask itself:
  it names each submission by hashing everything sent with it (pickling the task and the run
  context up to three times), though a task run's id makes every name unique anyway. The lab
  caches the settings and skips that hash (workshop_lab/prefect_speedups/__init__.py, in every lab
  process), which leaves about 25 ms: the task run's own records (states, logs, events). That is
  still about ten times a plain Dask task, so give each task run enough work to pay for it: fewer,
  bigger tasks (batches, about one per Dask thread), and plain Dask (`get_dask_client()`) inside
  one task for thousands of tiny pieces.
- Settings matter too. Dask's workers check their event loop every 20 ms by default and sample
  the running task's stack every 10 ms for the dashboard's Profile page: both take the GIL from
  pure-Python work. The lab sets the check to 1 s (`DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL`) and
  turns the sampling off in the workers (`DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED`), and the
  workers print only Prefect's warnings to their own log (every task run's logs still reach the UI).
- Depth-first mapping: a task mapped over the *futures* of another starts on each item as soon as
  that item's upstream is done, without waiting for the whole upstream map to finish.

How to run it
- `./lab run dask-crunch/dask-crunch` (or Deployments → dask-crunch → Run in the UI), then open the
  flow run's page: the timeline shows `check-batch` runs starting while `crunch-batch` runs are
  still going (depth-first), and the "dask-crunch-workers" artifact shows which Dask worker ran what.
  Watch the cluster at work on the Dask dashboard (http://localhost:8787/status).
- `./lab run dask-compare/dask-compare` runs the same workload every way (sequential, threads,
  Dask with one task per chunk, Dask in batches, plain Dask inside one task) and prints a table of
  timings and speedups over the sequential run; the same table is the "dask-compare" artifact.
- As a plain script: `.venv/bin/python flows/08_dask.py` (runs the comparison).

Walkthrough
1. The kernel: plain Python that keeps one CPU core busy for about 0.13 s per chunk.
2. Tasks: one batch of chunks per task run, plus a cheap check mapped over the batches' futures.
3. The flow on Dask (`dask-crunch`), and the same flow with other task runners.
4. Fine-grained work done by Dask itself, inside one Prefect task (`get_dask_client()`).
5. The comparison flow (`dask-compare`).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import cloudpickle
from distributed import get_worker
from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner
from prefect_dask import DaskTaskRunner, get_dask_client

# The lab sets DASK_SCHEDULER_ADDRESS for every process that runs flows. Outside the lab (None),
# DaskTaskRunner starts a throwaway local cluster for the length of the flow run instead.
SCHEDULER_ADDRESS = os.environ.get("DASK_SCHEDULER_ADDRESS")

# About 0.13 s of pure Python per chunk on a laptop core; the flows crunch 80 chunks by default,
# about 10 s of work. Why so much: a Prefect flow on Dask has fixed costs of a second or more
# (connecting, shipping and starting each task run, see step 3), and work of a few seconds would
# not outgrow them. Try `chunks=20` to see the cluster lose to a single thread.
CHUNK_SIZE = 1_000_000


# How code reaches the Dask workers: pickled. A task's own function travels *by value* (its code is
# copied), but a plain function it calls, like `crunch_chunk` below, travels *by name*
# ("08_dask.crunch_chunk"), and a Dask worker cannot import this file: its working directory is not
# flows/. The worker would fail with "No module named '08_dask'". This line tells cloudpickle to
# copy everything defined in this file by value. (A helper module you import from here has the
# same problem: register it too, or install it as a package on every worker.)
cloudpickle.register_pickle_by_value(sys.modules[__name__])


# ---------------------------------------------------------------------------------------------
# 1. The kernel: plain Python, no Prefect. It holds the GIL the whole time, so threads cannot run
#    two of these at once; Dask worker *processes* can.
# ---------------------------------------------------------------------------------------------
def crunch_chunk(chunk: int, size: int = CHUNK_SIZE) -> int:
    """Burn one core for a fixed amount of pure-Python work and return a checksum."""
    total = chunk
    for i in range(size):
        total = (total * 31 + i) % 1_000_003
    return total


def where_am_i() -> str:
    """The address of the Dask worker running this code, or 'flow process' outside Dask."""
    try:
        return get_worker().address
    except ValueError:  # not inside a Dask worker: a thread of the flow's own process
        return "flow process"


def split(chunks: int, batches: int) -> list[list[int]]:
    """Deal chunk numbers 0..chunks-1 into `batches` lists of near-equal length."""
    batches = max(1, min(batches, chunks))
    return [list(range(start, chunks, batches)) for start in range(batches)]


# ---------------------------------------------------------------------------------------------
# 2. Tasks. Each task run has a fixed cost, whatever it does; so one task run gets a *batch* of
#    chunks, not one chunk. Two options skip work nobody needs here (they are good hygiene, but
#    measured, they barely dent the fixed cost: most of it is the task run's own records in the
#    API, which no option turns off):
#    - cache_policy=NO_CACHE: the default policy hashes the inputs and the task's source code on
#      every call, to look up a cached result we never want for this work;
#    - persist_result=False: nobody reads these results after the flow, so don't write them to
#      result storage.
#    No retries: these tasks touch no network, a failure here is a bug to see, not a blip to hide.
# ---------------------------------------------------------------------------------------------
@task(name="crunch-batch", cache_policy=NO_CACHE, persist_result=False)
def crunch_batch(batch: list[int]) -> dict[str, Any]:
    """Crunch every chunk of one batch and report where and when it ran."""
    started = time.time()
    checksum = sum(crunch_chunk(chunk) for chunk in batch) % 1_000_003
    return {
        "chunks": len(batch),
        "checksum": checksum,
        "dask_worker": where_am_i(),
        "seconds": round(time.time() - started, 3),
    }


@task(name="check-batch", cache_policy=NO_CACHE, persist_result=False)
def check_batch(crunched: dict[str, Any]) -> dict[str, Any]:
    """A cheap downstream step per batch: validate one crunched batch as soon as it exists."""
    assert 0 <= crunched["checksum"] < 1_000_003, crunched
    return {**crunched, "checked_on": where_am_i()}


# ---------------------------------------------------------------------------------------------
# 3. The flow on the lab's Dask cluster. `.map` returns futures straight away; mapping
#    `check_batch` over those futures (not over their results) lets each check start as soon as
#    its own batch is done: depth-first. Calling `.result()` on every crunch first would instead
#    wait for the slowest batch before any check could start (breadth-first).
#    Two batches for two single-threaded workers: one batch per Dask thread, so each task run's
#    work (~5 s) dwarfs its fixed cost, and that cost is paid twice per worker, not eighty times.
#    Whichever batch finishes first gets its check started while the other is still crunching:
#    on the timeline, a check-batch bar begins before the last crunch-batch ends.
# ---------------------------------------------------------------------------------------------
@flow(name="dask-crunch", task_runner=DaskTaskRunner(address=SCHEDULER_ADDRESS), log_prints=True)
def dask_crunch(chunks: int = 80, batches: int = 2) -> dict[str, Any]:
    """Crunch `chunks` chunks of CPU work in `batches` task runs on the Dask cluster."""
    started = time.perf_counter()
    crunched = crunch_batch.map(split(chunks, batches))
    checked: list[PrefectFuture] = check_batch.map(crunched)
    rows = [future.result() for future in checked]
    seconds = time.perf_counter() - started
    workers = sorted({row["dask_worker"] for row in rows})
    create_table_artifact(
        key="dask-crunch-workers",
        table=rows,
        description="One row per batch: which Dask worker crunched it and which checked it.",
    )
    print(
        f"{chunks} chunks in {len(rows)} task runs on {len(workers)} worker(s) in {seconds:.2f} s: {', '.join(workers)}"
    )
    return {"chunks": chunks, "task_runs": len(rows) * 2, "seconds": seconds, "workers": workers}


# The *same* flow with a different task runner: `with_options` makes a copy, the code is untouched.
# One thread = sequential; two threads = what most people try first (the GIL keeps it sequential).
sequential_crunch = dask_crunch.with_options(
    name="dask-crunch-sequential", task_runner=ThreadPoolTaskRunner(max_workers=1)
)
threaded_crunch = dask_crunch.with_options(name="dask-crunch-threads", task_runner=ThreadPoolTaskRunner(max_workers=2))


# ---------------------------------------------------------------------------------------------
# 4. Fine-grained work: when you really have thousands of tiny pieces, don't make each one a
#    Prefect task run. Make *one* task run, and inside it ask Dask for a client on the same cluster
#    (`get_dask_client()`) and map the plain function: Dask's own cost is about a millisecond per
#    piece. The task secedes from its worker while it waits, so both workers crunch the pieces.
#    You keep retries, logs and state for the step as a whole; the pieces are Dask's business.
# ---------------------------------------------------------------------------------------------
@task(name="crunch-with-dask-client", cache_policy=NO_CACHE, persist_result=False)
def crunch_with_dask_client(chunks: int) -> dict[str, Any]:
    """Map the plain kernel over every chunk with Dask directly, from inside one task run."""
    with get_dask_client() as client:
        checksums = client.gather(client.map(crunch_chunk, list(range(chunks)), pure=False))
    return {"chunks": chunks, "checksum": sum(checksums) % 1_000_003, "dask_worker": where_am_i()}


@flow(name="dask-crunch-fine-grained", task_runner=DaskTaskRunner(address=SCHEDULER_ADDRESS))
def fine_grained_crunch(chunks: int = 80) -> dict[str, Any]:
    """Crunch `chunks` chunks as one Prefect task run that fans out with plain Dask."""
    started = time.perf_counter()
    result = crunch_with_dask_client.submit(chunks).result()
    return {
        "chunks": chunks,
        "task_runs": 1,
        "seconds": time.perf_counter() - started,
        "workers": [result["dask_worker"]],
    }


# ---------------------------------------------------------------------------------------------
# 5. The comparison: every variant above as a subflow, on the same chunks, timed from here.
#    Expect: threads ≈ sequential (GIL); Dask with one task run per chunk barely faster or even
#    slower (the per-task cost eats the gain); Dask in batches and Dask-inside-a-task clearly
#    faster. On a busy 2-core laptop the Prefect server competes for the same cores: numbers vary.
# ---------------------------------------------------------------------------------------------
@flow(name="dask-compare", log_prints=True)
def dask_compare(chunks: int = 80, batches: int = 2) -> list[dict[str, Any]]:
    """Run the same CPU-bound workload sequentially, on threads and on Dask, and compare."""
    variants = [
        ("sequential (1 thread)", lambda: sequential_crunch(chunks=chunks, batches=batches)),
        ("threads (2 threads)", lambda: threaded_crunch(chunks=chunks, batches=batches)),
        ("Dask, one task run per chunk", lambda: dask_crunch(chunks=chunks, batches=chunks)),
        (f"Dask, {batches} batches", lambda: dask_crunch(chunks=chunks, batches=batches)),
        ("Dask inside one task (get_dask_client)", lambda: fine_grained_crunch(chunks=chunks)),
    ]
    rows = []
    for label, run in variants:
        started = time.perf_counter()
        result = run()
        rows.append(
            {"variant": label, "task_runs": result["task_runs"], "seconds": round(time.perf_counter() - started, 2)}
        )
    baseline = rows[0]["seconds"]
    for row in rows:
        row["speedup"] = round(baseline / row["seconds"], 2)
        print(f"{row['variant']:<42} {row['task_runs']:>4} task run(s) {row['seconds']:>7.2f} s  {row['speedup']:.2f}x")
    create_table_artifact(
        key="dask-compare", table=rows, description=f"{chunks} chunks of CPU work; speedup over the sequential run."
    )
    return rows


if __name__ == "__main__":
    dask_compare()
