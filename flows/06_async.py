"""
# 06 · Async: wait for many slow requests at once

What you will learn
- Most pipeline time spent "calling an API" is waiting, not computing. `async def` tasks let one
  process wait for many requests at the same time.
- An async task is called like a coroutine: `await fetch(city)` runs one and waits for it;
  `await asyncio.gather(*(fetch(c) for c in cities))` starts them all, then waits for all.
- The same async code, awaited one by one, is exactly as slow as plain synchronous code: `async`
  alone buys nothing, *awaiting concurrently* does.
- Each task run has a bookkeeping cost that does not overlap: for many small requests, gather
  plain coroutines inside one task instead of making each request a task run.

How to run it
- `./lab run async-weather/async-weather` (or Deployments → async-weather → Run in the UI), then
  open the flow run's page: in the timeline the `sequential-…` task runs sit one after another, the
  `concurrent-…` ones on top of each other. The log line at the end prints the speedups.
- As a plain script, against the lab's upstream: `.venv/bin/python flows/06_async.py`

Walkthrough
1. Make the upstream slow: the flow sets the upstream's chaos `latency_ms` (300 ms per request by
   default) for the length of the run and puts the old value back at the end.
2. One async task: fetch one city's weather.
3. One async task that fetches every city itself, concurrently.
4. The flow: every city one at a time (each `await` waits before the next request starts), then
   concurrently as task runs (`asyncio.gather`), then concurrently inside one task; compare.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from prefect import flow, task

# The lab sets LAB_UPSTREAM_URL for every process that runs flows; this default is the embedded lab's.
UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")
CITIES = ["Berlin", "Lagos", "Lima", "Mumbai", "Oslo", "Sydney", "Toronto"]


# ---------------------------------------------------------------------------------------------
# 1. A slow upstream on demand: PATCH /chaos sets the latency every data request waits before it
#    answers, and we restore whatever was there before, even if the flow fails.
# ---------------------------------------------------------------------------------------------
@asynccontextmanager
async def upstream_latency(latency_ms: int) -> AsyncIterator[None]:
    """Set the upstream's added latency for the duration of a `with` block."""
    async with httpx.AsyncClient(base_url=UPSTREAM_URL, timeout=10) as client:
        before = (await client.get("/chaos")).raise_for_status().json()["latency_ms"]
        (await client.patch("/chaos", json={"latency_ms": latency_ms})).raise_for_status()
        try:
            yield
        finally:
            (await client.patch("/chaos", json={"latency_ms": before})).raise_for_status()


# ---------------------------------------------------------------------------------------------
# 2. One async task. `async def` + an async HTTP client: while this request waits for the
#    upstream, the event loop runs the other tasks. Retries: 2 retries 1 s apart ride out a blip of
#    the flaky upstream (a 503) without hiding an outage; the 10 s timeout bounds a hung request.
# ---------------------------------------------------------------------------------------------
async def get_weather(client: httpx.AsyncClient, city: str, hours: int = 24) -> dict[str, Any]:
    """One request for one city's hourly weather: a plain coroutine, no Prefect."""
    response = await client.get("/weather", params={"city": city, "hours": hours})
    response.raise_for_status()
    return {"city": city, "readings": len(response.json()["records"])}


@task(retries=2, retry_delay_seconds=1)
async def fetch_weather(city: str, hours: int = 24) -> dict[str, Any]:
    """Fetch one city's hourly weather from the upstream."""
    async with httpx.AsyncClient(base_url=UPSTREAM_URL, timeout=10) as client:
        return await get_weather(client, city, hours)


# Same task, two names, so the two phases are easy to tell apart on the flow run's timeline.
fetch_one_by_one = fetch_weather.with_options(task_run_name="sequential-{city}")
fetch_together = fetch_weather.with_options(task_run_name="concurrent-{city}")


# ---------------------------------------------------------------------------------------------
# 3. Many small requests, one task run. Each task run costs Prefect some bookkeeping (creating it
#    in the API, recording its states), and that part does not overlap well: at 300 ms per request
#    it is a good share of the total. When the requests are many and small, gather plain
#    coroutines inside *one* task: one task run to pay for, one shared HTTP client. The price: the
#    retry policy now covers the whole batch (one failed city re-fetches all of them), and the UI
#    shows one task run instead of one per city. Same retry reasoning as above.
# ---------------------------------------------------------------------------------------------
@task(retries=2, retry_delay_seconds=1, task_run_name="all-cities-in-one-task")
async def fetch_all_weather(cities: list[str], hours: int = 24) -> list[dict[str, Any]]:
    """Fetch every city's weather concurrently with one shared client, in one task run."""
    async with httpx.AsyncClient(base_url=UPSTREAM_URL, timeout=10) as client:
        return list(await asyncio.gather(*(get_weather(client, city, hours) for city in cities)))


# ---------------------------------------------------------------------------------------------
# 4. The flow: the same requests awaited one by one (what synchronous code costs), then all at
#    once as task runs (`asyncio.gather` runs the coroutines of every call on one event loop:
#    the waits overlap), then all at once inside one task run.
# ---------------------------------------------------------------------------------------------
@flow(name="async-weather", log_prints=True)
async def async_weather(cities: list[str] = CITIES, latency_ms: int = 300) -> dict[str, float]:
    """Fetch every city's weather one by one, then concurrently, and print the speedups."""
    async with upstream_latency(latency_ms):
        started = time.perf_counter()
        for city in cities:
            await fetch_one_by_one(city)
        one_by_one = time.perf_counter() - started

        started = time.perf_counter()
        await asyncio.gather(*(fetch_together(city) for city in cities))
        together = time.perf_counter() - started

        started = time.perf_counter()
        await fetch_all_weather(cities)
        in_one_task = time.perf_counter() - started

    print(
        f"{len(cities)} requests at {latency_ms} ms each: one by one {one_by_one:.2f} s; "
        f"concurrent task runs {together:.2f} s ({one_by_one / together:.1f}x faster); "
        f"concurrent inside one task {in_one_task:.2f} s ({one_by_one / in_one_task:.1f}x faster)"
    )
    return {
        "sequential_s": one_by_one,
        "concurrent_s": together,
        "one_task_s": in_one_task,
        "speedup": one_by_one / together,
        "one_task_speedup": one_by_one / in_one_task,
    }


if __name__ == "__main__":
    asyncio.run(async_weather())
