"""
# Solution 01 · Negative engineering: a customer report that survives the chaos

How to run it: `.venv/bin/python flows/exercises/solutions/01_negative_engineering_solution.py`
with the lab up (it reads LAB_UPSTREAM_URL, default http://127.0.0.1:8700). Set the chaos first:

    curl -X POST localhost:8700/chaos/reset
    curl -X PATCH localhost:8700/chaos -H 'content-type: application/json' \\
         -d '{"fail_next": 3, "malformed_rate": 0.05, "seed": 11}'

Then compare the printed quarantine count with `curl localhost:8700/stats` (malformed_records).
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import datetime
from typing import Annotated, Any

import httpx
from prefect import flow, task
from prefect.artifacts import create_table_artifact
from pydantic import BaseModel, Field, ValidationError

UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")
PAGE_SIZE = 100


# ---------------------------------------------------------------------------------------------
# Extract. 4 retries 1 s apart: `fail_next: 3` fails the first three requests, whichever page they
# hit, so one unlucky page needs 3 retries; the fourth is headroom. 5 s timeout: a hung request
# becomes a retryable error instead of a stuck run.
# ---------------------------------------------------------------------------------------------
@task(retries=4, retry_delay_seconds=1)
def fetch_customers_page(page: int) -> dict[str, Any]:
    """Fetch one page of customers; raise on any HTTP error so Prefect retries it."""
    response = httpx.get(f"{UPSTREAM_URL}/customers", params={"page": page, "page_size": PAGE_SIZE}, timeout=5)
    response.raise_for_status()
    return response.json()


# ---------------------------------------------------------------------------------------------
# Validate: what a good customer looks like. Anything else is quarantined with the reason.
# ---------------------------------------------------------------------------------------------
class Customer(BaseModel):
    """One customer as the report needs it."""

    customer_id: int
    name: Annotated[str, Field(min_length=1, pattern=r"^[^?]*$")]  # a garbled value ends in " ??"
    email: Annotated[str, Field(pattern=r"^[^@\s?]+@[^@\s?]+$")]
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    signed_up_at: datetime


@task
def validate_customers(records: list[dict[str, Any]]) -> tuple[list[Customer], list[dict[str, Any]]]:
    """Split records into valid customers and quarantined records with their reasons."""
    valid, quarantined = [], []
    for record in records:
        try:
            valid.append(Customer.model_validate(record))
        except ValidationError as error:
            reason = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            quarantined.append({"customer_id": record.get("customer_id"), "reason": reason})
    return valid, quarantined


# ---------------------------------------------------------------------------------------------
# The flow: fetch, validate, count, reconcile, publish.
# ---------------------------------------------------------------------------------------------
@flow(name="customer-countries", log_prints=True)
def customer_countries() -> dict[str, int]:
    """Count customers per country from validated records, quarantining the malformed ones."""
    first = fetch_customers_page(1)
    pages = list(range(2, -(-first["total"] // PAGE_SIZE) + 1))
    bodies = [first, *[future.result() for future in fetch_customers_page.map(pages)]]
    records = [record for body in bodies for record in body["records"]]

    valid, quarantined = validate_customers(records)
    if len(valid) + len(quarantined) != len(records) or len(records) != first["total"]:
        raise ValueError(
            f"counts do not reconcile: {len(records)} fetched of {first['total']}, "
            f"{len(valid)} kept, {len(quarantined)} quarantined"
        )

    per_country = Counter(customer.country for customer in valid)
    create_table_artifact(
        key="customer-countries", table=[{"country": c, "customers": n} for c, n in sorted(per_country.items())]
    )
    create_table_artifact(
        key="customer-quarantine", table=quarantined or [{"customer_id": None, "reason": "nothing quarantined"}]
    )
    print(f"{len(records)} fetched, {len(valid)} kept, {len(quarantined)} quarantined; {len(per_country)} countries")
    return dict(per_country)


if __name__ == "__main__":
    customer_countries()
