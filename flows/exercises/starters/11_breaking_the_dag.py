"""
# Exercise 11 · Breaking the DAG: your starting point (flows/exercises/11_breaking_the_dag.md)

Copy it, then make `./lab check 11` pass:
    mkdir -p flows/mine && cp flows/exercises/starters/11_breaking_the_dag.py flows/mine/
    .venv/bin/python flows/mine/11_breaking_the_dag.py
    ./lab check 11
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from prefect import flow

UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")
COUNTRIES = {"DE", "NG", "PE", "IN", "NO", "AU", "CA", "US", "GB", "FR"}


# --- plain functions: the checks (given). None of them is a task. ---------------------------
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


@flow(name="quality-gate", log_prints=True)
def quality_gate(page_size: int = 120, max_bad_share: float = 0.01) -> str:
    """Check every customer with run-time tasks, then publish or quarantine as the data decides."""
    records = fetch_page(1, page_size)  # TODO: a task with retries, in a while loop until a short page
    # TODO: every function in CHECKS as its own task, made at run time: task(fn, name=fn.__name__)
    # TODO: publish (a task named "publish"), or one quarantine task and table artifact per failing check
    print(f"{len(records)} customers")
    return "publish"


if __name__ == "__main__":
    quality_gate()
