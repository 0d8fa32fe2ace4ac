"""
# Solution 06 · Async: page through orders concurrently, politely

How to run it: `.venv/bin/python flows/exercises/solutions/06_async_solution.py` with the lab up
(it reads LAB_UPSTREAM_URL, default http://127.0.0.1:8700).

Downloads the upstream's 20 pages of orders three ways (one by one, all at once, at most 4 in
flight) with the upstream slowed to 300 ms per request, and prints the three times.
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

UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")
PAGE_SIZE = 250  # 5,000 orders / 250 = 20 pages; above 500 the upstream answers 400


@asynccontextmanager
async def upstream_latency(latency_ms: int) -> AsyncIterator[None]:
    """Set the upstream's added latency for the duration of a `with` block, then restore it."""
    async with httpx.AsyncClient(base_url=UPSTREAM_URL, timeout=10) as client:
        before = (await client.get("/chaos")).raise_for_status().json()["latency_ms"]
        (await client.patch("/chaos", json={"latency_ms": latency_ms})).raise_for_status()
        try:
            yield
        finally:
            (await client.patch("/chaos", json={"latency_ms": before})).raise_for_status()


# ---------------------------------------------------------------------------------------------
# The task. 3 retries 1 s apart: at failure_rate 0.2 the chance that one page fails 4 times in a
# row is 0.2**4 = 0.16%, small enough for 20 pages; a 400 (bad page size) fails the same way every
# time, the retries only delay the error by 3 s. The 10 s timeout bounds a hung request.
# ---------------------------------------------------------------------------------------------
@task(retries=3, retry_delay_seconds=1, task_run_name="page-{page}")
async def fetch_page(page: int) -> list[dict[str, Any]]:
    """Fetch one page of orders."""
    async with httpx.AsyncClient(base_url=UPSTREAM_URL, timeout=10) as client:
        response = await client.get("/orders", params={"page": page, "page_size": PAGE_SIZE})
        response.raise_for_status()
        return response.json()["records"]


async def fetch_limited(page: int, semaphore: asyncio.Semaphore) -> list[dict[str, Any]]:
    """Fetch one page, but only while holding one of the semaphore's slots."""
    async with semaphore:
        return await fetch_page(page)


# ---------------------------------------------------------------------------------------------
# The flow: one by one, all at once, at most `max_in_flight` at once.
# ---------------------------------------------------------------------------------------------
@flow(name="async-orders", log_prints=True)
async def async_orders(pages: int = 20, latency_ms: int = 300, max_in_flight: int = 4) -> dict[str, float | int]:
    """Download every page of orders three ways; return how many orders each got and the times."""
    times: dict[str, float] = {}
    async with upstream_latency(latency_ms):
        started = time.perf_counter()
        one_by_one = [await fetch_page(page) for page in range(1, pages + 1)]
        times["one_by_one_s"] = time.perf_counter() - started

        started = time.perf_counter()
        together = await asyncio.gather(*(fetch_page(page) for page in range(1, pages + 1)))
        times["all_at_once_s"] = time.perf_counter() - started

        semaphore = asyncio.Semaphore(max_in_flight)  # created inside the running loop
        started = time.perf_counter()
        limited = await asyncio.gather(*(fetch_limited(page, semaphore) for page in range(1, pages + 1)))
        times["limited_s"] = time.perf_counter() - started

    counts = {len(sum(result, [])) for result in (one_by_one, together, limited)}
    if len(counts) != 1:
        raise ValueError(f"the three variants got different numbers of orders: {counts}")
    print(f"orders per variant: {counts}; times: " + ", ".join(f"{k} {v:.2f}" for k, v in times.items()))
    return {"orders": counts.pop(), **times}


if __name__ == "__main__":
    asyncio.run(async_orders())
