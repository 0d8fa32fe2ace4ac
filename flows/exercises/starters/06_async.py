"""
# Exercise 06 · Async: your starting point (flows/exercises/06_async.md)

Copy it, then make `./lab check 06` pass:
    mkdir -p flows/mine && cp flows/exercises/starters/06_async.py flows/mine/
    .venv/bin/python flows/mine/06_async.py
    ./lab check 06
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import httpx
from prefect import flow, task

UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")
PAGE_SIZE = 250


# TODO: a retry policy, with a comment on why those numbers
@task(task_run_name="page-{page}")
async def fetch_page(page: int) -> list[dict[str, Any]]:
    """Fetch one page of orders."""
    async with httpx.AsyncClient(base_url=UPSTREAM_URL, timeout=10) as client:
        response = await client.get("/orders", params={"page": page, "page_size": PAGE_SIZE})
        response.raise_for_status()
        return response.json()["records"]


@flow(name="async-orders", log_prints=True)
async def async_orders(pages: int = 20, latency_ms: int = 300, max_in_flight: int = 4) -> dict[str, float | int]:
    """Download every page of orders three ways; return how many orders each got and the times."""
    # TODO: set the upstream's latency to latency_ms for the run, and put it back afterwards
    started = time.perf_counter()
    one_by_one = [await fetch_page(page) for page in range(1, pages + 1)]
    times = {"one_by_one_s": time.perf_counter() - started}
    # TODO: all at once (asyncio.gather), then at most max_in_flight at once (asyncio.Semaphore)
    return {"orders": len(sum(one_by_one, [])), **times}


if __name__ == "__main__":
    asyncio.run(async_orders())
