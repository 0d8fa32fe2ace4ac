"""
# 02 · Retries: exponential backoff, jitter, and knowing when not to retry

What you will learn
- `retries=` and `retry_delay_seconds=` on a task turn a failed attempt into a wait and another try.
- `exponential_backoff(backoff_factor=...)` waits longer after each failure (0.5 s, 1 s, 2 s, ...), so
  a struggling upstream gets room to recover instead of a stampede.
- `retry_jitter_factor=` randomizes each delay a little, so a hundred tasks that failed together do
  not all come back at the same instant.
- `retry_condition_fn=` decides *whether* a failure is worth retrying. A 503 ("try again later") is;
  a 400 ("your request is wrong") is not: sending the same wrong request again cannot help, so the
  task fails at once and tells you.

How to run it
- Make the upstream fail its next two requests, then run the flow:
      curl -X PATCH localhost:8700/chaos -H 'content-type: application/json' -d '{"fail_next": 2}'
      ./lab run retries/retries
  In the UI (Runs → the run → Logs) the first page's task logs "Retry 1/3 will start ... from now",
  then "Retry 2/3 ...", then completes; that task run's Details show Run Count 3. (./lab run
  prints the same log lines as they come.)
- Ask for a page the upstream refuses (it allows at most 500 records a page):
      ./lab run retries/retries --param page_size=600      # or UI: Run → Custom run
  The run fails after a single attempt: a 400 is not retried.

Walkthrough: the retry condition first, then the task that uses it, then a small flow that fetches a
few pages of orders.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import httpx
from prefect import Task, flow, task
from prefect.client.schemas.objects import State, TaskRun
from prefect.tasks import exponential_backoff
from pydantic import Field

UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")


# ---------------------------------------------------------------------------------------------
# When is a failure worth retrying? Prefect calls this with the failed state after each failed
# attempt; returning False ends the task's retries right there.
# ---------------------------------------------------------------------------------------------
def is_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry server-side trouble (5xx, 429, timeouts, dropped connections), never a client error (4xx)."""
    try:
        state.result()  # re-raises the exception the attempt failed with
    except httpx.HTTPStatusError as error:
        return error.response.status_code >= 500 or error.response.status_code == 429
    except httpx.TransportError:  # timeouts, refused or dropped connections
        return True
    except Exception:  # anything else is a bug in our code: retrying would only repeat it
        return False
    return False


# ---------------------------------------------------------------------------------------------
# The task, with its whole retry policy where a reader can see it.
# Why these numbers: up to 3 retries, waiting about 0.5 s, 1 s, then 2 s (the backoff doubles), each
# delay jittered by up to 50%. That rides out a short outage in under 4 s, short enough that nobody
# in class waits; a production job talking to a real API would use seconds to minutes.
# ---------------------------------------------------------------------------------------------
@task(
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=0.5),
    retry_jitter_factor=0.5,
    retry_condition_fn=is_transient,
)
def fetch_orders_page(page: int, page_size: int) -> list[dict[str, Any]]:
    """Fetch one page of orders; an HTTP error raises, and the retry policy decides what happens next."""
    response = httpx.get(f"{UPSTREAM_URL}/orders", params={"page": page, "page_size": page_size}, timeout=5)
    response.raise_for_status()
    return response.json()["records"]


# ---------------------------------------------------------------------------------------------
# The flow fetches the pages one after another. Note that page_size has no upper bound here on
# purpose: the deployment enforces its parameter schema, and a `le=500` would stop page_size=600
# before the run even starts (that is lesson 03). Here we want to see the upstream's 400.
# ---------------------------------------------------------------------------------------------
@flow(name="retries", log_prints=True)
def retries(pages: Annotated[int, Field(ge=1, le=10)] = 2, page_size: Annotated[int, Field(ge=1)] = 100) -> int:
    """Fetch a few pages of orders through a task whose retries tell transient errors from client errors."""
    fetched = 0
    for page in range(1, pages + 1):
        fetched += len(fetch_orders_page(page, page_size))
    print(f"fetched {fetched} orders in {pages} page(s) of {page_size}")
    return fetched


if __name__ == "__main__":
    retries()
