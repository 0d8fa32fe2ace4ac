"""
# Exercise 01 · Negative engineering: your starting point (flows/exercises/01_negative_engineering.md)

Copy it, then make `./lab check 01` pass:
    mkdir -p flows/mine && cp flows/exercises/starters/01_negative_engineering.py flows/mine/
    .venv/bin/python flows/mine/01_negative_engineering.py
    ./lab check 01
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import httpx
from prefect import flow, task
from prefect.artifacts import create_table_artifact

UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")
PAGE_SIZE = 100


# TODO: a retry policy (and say why those numbers), an HTTP timeout
@task
def fetch_customers_page(page: int) -> dict[str, Any]:
    """Fetch one page of customers."""
    response = httpx.get(f"{UPSTREAM_URL}/customers", params={"page": page, "page_size": PAGE_SIZE})
    response.raise_for_status()
    return response.json()


# TODO: a pydantic model `Customer`; every record that does not fit goes to a quarantine list with the reason


@flow(name="customer-countries", log_prints=True)
def customer_countries() -> dict[str, int]:
    """Count customers per country from validated records, quarantining the malformed ones."""
    records = [r for page in range(1, 6) for r in fetch_customers_page(page)["records"]]
    per_country = Counter(record.get("country") for record in records)  # TODO: valid records only
    # TODO: reconcile (fetched = kept + quarantined = the upstream's total) and fail the run if not
    create_table_artifact(
        key="customer-countries", table=[{"country": c, "customers": n} for c, n in per_country.items()]
    )
    # TODO: a table artifact "customer-quarantine" with each quarantined record's customer_id and reason
    return dict(per_country)


if __name__ == "__main__":
    customer_countries()
