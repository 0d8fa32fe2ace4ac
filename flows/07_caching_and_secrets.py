"""
# 07 · Caching and secrets: don't fetch twice, don't put tokens in code

What you will learn
- `cache_policy=INPUTS + TASK_SOURCE` gives a task run a *cache key* made of its inputs and its own
  source code. A later run with the same key (within `cache_expiration`) does not run the task at
  all: it reuses the stored result and ends in a **Cached** state. Change an input, or edit the
  task's code, and the key changes: the task runs again.
- A cache needs the result stored somewhere every process can read: Prefect persists cached
  results to `PREFECT_LOCAL_STORAGE_PATH`, which the lab points at a folder the worker and the Dask
  workers share.
- A `Secret` block keeps a credential on the Prefect server, encrypted at rest and shown masked in
  the UI. The code names the block; the value never appears in git, in parameters or in logs.
  `- "api_token"` keeps it out of the cache key too: rotating the token should not throw away the cache.

How to run it
- Create the secret once (any value: the lab's upstream accepts every token):
      .venv/bin/python -c "from prefect.blocks.system import Secret; Secret(value='s3cr3t').save('upstream-api-token', overwrite=True)"
  or in the UI: Blocks → + → Secret, name `upstream-api-token`.
- `./lab run caching-and-secrets/caching-and-secrets` twice. On the second run the task
  `fetch_customers_page` shows the state **Cached**, and `curl localhost:8700/stats` shows that the
  upstream received no second request.
- Run it with `--param page=2`: a new input, a new cache key, a real request.

Walkthrough: the secret, then the cached task, then the flow that puts them together.
"""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta
from typing import Annotated, Any

import httpx
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.blocks.system import Secret
from prefect.cache_policies import INPUTS, TASK_SOURCE
from pydantic import Field

UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")
DEFAULT_SECRET_BLOCK = "upstream-api-token"


# ---------------------------------------------------------------------------------------------
# The secret. `Secret.load(name)` asks the Prefect server for the block; `.get()` returns the value.
# We never print it: the fingerprint (the first characters of its SHA-256) is enough to tell which
# token a run used, and says nothing about the token itself.
# It is a plain function on purpose, not a task: a task's return value may be persisted as a result
# file, and a secret has no business in result storage.
# ---------------------------------------------------------------------------------------------
def load_api_token(block_name: str) -> str:
    """Load the upstream's API token from a Secret block on the Prefect server."""
    try:
        return Secret.load(block_name).get()
    except ValueError as error:
        raise RuntimeError(
            f"No Secret block named {block_name!r}. Create it (UI: Blocks → + → Secret), or: "
            f".venv/bin/python -c \"from prefect.blocks.system import Secret; Secret(value='...').save('{block_name}')\""
        ) from error


def fingerprint(value: str) -> str:
    """A short, one-way identifier of a secret, safe to log."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:12]


# ---------------------------------------------------------------------------------------------
# The cached task. Why these settings: customers change rarely, so an hour-old answer is good
# enough and saves the upstream a request on every rerun; the retry policy (2 retries, 1 s apart)
# covers an upstream blip, and a cached run never reaches the network at all.
# ---------------------------------------------------------------------------------------------
@task(
    cache_policy=(INPUTS - "api_token") + TASK_SOURCE,
    cache_expiration=timedelta(hours=1),
    retries=2,
    retry_delay_seconds=1,
)
def fetch_customers_page(page: int, page_size: int, api_token: str) -> list[dict[str, Any]]:
    """Fetch one page of customers, authenticating with the API token."""
    response = httpx.get(
        f"{UPSTREAM_URL}/customers",
        params={"page": page, "page_size": page_size},
        headers={"Authorization": f"Bearer {api_token}"},  # the lab's upstream accepts any token
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["records"]


# ---------------------------------------------------------------------------------------------
# The flow: load the secret, fetch (or reuse) the page, report what it did without the secret.
# ---------------------------------------------------------------------------------------------
@flow(name="caching-and-secrets", log_prints=True)
def caching_and_secrets(
    page: Annotated[int, Field(ge=1)] = 1,
    page_size: Annotated[int, Field(ge=1, le=500)] = 100,
    secret_block: str = DEFAULT_SECRET_BLOCK,
) -> dict[str, Any]:
    """Fetch a page of customers through a cached task, authenticating with a token from a Secret block."""
    token = load_api_token(secret_block)
    customers = fetch_customers_page(page, page_size, token)
    countries = sorted({c["country"] for c in customers if c.get("country")})
    summary = {"customers": len(customers), "countries": countries, "token": fingerprint(token)}
    create_markdown_artifact(
        key="caching-and-secrets",
        markdown=(
            f"Fetched **{len(customers)}** customers (page {page}, {page_size} per page) from {len(countries)} countries.  \n"
            f"Authenticated with the token from Secret block `{secret_block}` ({summary['token']})."
        ),
    )
    print(
        f"{len(customers)} customers from {len(countries)} countries; token {summary['token']} from block {secret_block!r}"
    )
    return summary


if __name__ == "__main__":
    caching_and_secrets()
