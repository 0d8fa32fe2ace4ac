"""
Solution to exercise 11 · Breaking the DAG: run a flow without pre-registered components.

Run it (against the lab's upstream), clean and then with malformed records:
    .venv/bin/python flows/exercises/solutions/11_breaking_the_dag_solution.py
    curl -X PATCH localhost:8700/chaos -H 'content-type: application/json' -d '{"malformed_rate": 0.2}'
    .venv/bin/python flows/exercises/solutions/11_breaking_the_dag_solution.py
    curl -X POST localhost:8700/chaos/reset
The first run ends in `publish`; the second in one `quarantine-...` task per check that found bad records.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
from prefect import flow, task
from prefect.artifacts import create_table_artifact
from pydantic import Field

UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")
COUNTRIES = {"DE", "NG", "PE", "IN", "NO", "AU", "CA", "US", "GB", "FR"}


# --- plain functions: the checks. Append one to CHECKS and the flow runs it; nothing else to do. --
def missing_email(records: list[dict[str, Any]]) -> list[int]:
    """Records whose email is missing or has no @."""
    return [r["customer_id"] for r in records if "@" not in str(r.get("email") or "")]


def bad_country(records: list[dict[str, Any]]) -> list[int]:
    """Records whose country is not one we sell to."""
    return [r["customer_id"] for r in records if r.get("country") not in COUNTRIES]


def signup_in_future(records: list[dict[str, Any]]) -> list[int]:
    """Records whose signup date is missing, unreadable or in the future."""
    bad = []
    for r in records:
        try:
            if datetime.fromisoformat(str(r.get("signed_up_at"))) > datetime.now(UTC):
                bad.append(r["customer_id"])
        except ValueError:
            bad.append(r["customer_id"])
    return bad


CHECKS: list[Callable[[list[dict[str, Any]]], list[int]]] = [missing_email, bad_country, signup_in_future]


def fetch_page(page: int, page_size: int) -> list[dict[str, Any]]:
    """One page of customers."""
    response = httpx.get(f"{UPSTREAM_URL}/customers", params={"page": page, "page_size": page_size}, timeout=10)
    response.raise_for_status()
    return response.json()["records"]


def quarantine(check: str, ids: list[int]) -> int:
    """Record one check's failing ids as a table artifact."""
    create_table_artifact(
        key=f"quarantine-{check.replace('_', '-')}", table=[{"customer_id": i, "check": check} for i in ids]
    )
    return len(ids)


@flow(name="quality-gate", log_prints=True)
def quality_gate(
    page_size: Annotated[int, Field(ge=1, le=500)] = 120, max_bad_share: Annotated[float, Field(ge=0, le=1)] = 0.01
) -> str:
    """Check every customer with run-time tasks, then publish or quarantine as the data decides."""
    # Why these numbers: 3 retries 1 s apart ride out an upstream blip in class.
    fetch = task(fetch_page, retries=3, retry_delay_seconds=1, task_run_name="customers-page-{page}")
    records: list[dict[str, Any]] = []
    page = 0
    while True:  # 500 customers in pages of 120: four full pages, then a short one
        page += 1
        batch = fetch(page, page_size)
        records += batch
        if len(batch) < page_size:
            break

    failures = {fn.__name__: task(fn, name=fn.__name__)(records) for fn in CHECKS}
    bad_ids = set().union(*failures.values())
    print(
        f"{len(records)} customers in {page} pages, {len(bad_ids)} fail a check: { {k: len(v) for k, v in failures.items()} }"
    )

    if len(bad_ids) <= max_bad_share * len(records):
        task(lambda: f"published {len(records)} customers", name="publish")()
        return "publish"
    failing = [name for name, ids in failures.items() if ids]  # the fan-out is as wide as the trouble
    quarantined = task(quarantine, task_run_name="quarantine-{check}").map(failing, [failures[n] for n in failing])
    print(f"quarantined {sum(f.result() for f in quarantined)} record ids from {len(failing)} check(s)")
    return "quarantine"


if __name__ == "__main__":
    quality_gate()
