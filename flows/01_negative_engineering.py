"""
# 01 · Negative engineering: the same pipeline, as a Prefect flow

What you will learn
- The plain script in `01_plain_python_pipeline.py` dies on a 503 and silently writes wrong numbers
  when records are malformed. Here the *same* pipeline survives both, with very little extra code:
  - the HTTP task has a **retry policy** and a **timeout**, so a blip costs a second, not the run;
  - every record is **validated** (a pydantic model); bad records are **quarantined with a reason**
    instead of flowing into the report;
  - the flow **reconciles**: fetched = kept + quarantined, or the run fails loudly. The numbers it
    reports (artifacts on the run's page) say exactly what was kept and what was dropped, and why.

How to run it
- Make the upstream misbehave first (the lab's upstream listens on port 8700):
      curl -X PATCH localhost:8700/chaos -H 'content-type: application/json' \
           -d '{"fail_next": 2, "malformed_rate": 0.02, "seed": 7}'
- `./lab run negative-engineering/negative-engineering`, or in the UI: Deployments →
  negative-engineering → Run → Quick run. Watch the run's page: the first fetch goes
  AwaitingRetry → Retrying → Completed, and the Artifacts tab shows the daily revenue, the
  quarantined records and the reconciliation.
- Compare with the plain script on the same chaos: `.venv/bin/python flows/01_plain_python_pipeline.py`
- Put the upstream back: `curl -X POST localhost:8700/chaos/reset`

Walkthrough: extract (fetch pages, retried) → validate (keep or quarantine) → transform (daily
revenue) → load (CSV report + artifacts) → reconcile.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import BaseModel, Field, ValidationError

UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")
REPORTS_DIR = (
    Path(os.environ.get("LAB_WAREHOUSE_PATH", Path(tempfile.gettempdir()) / "workflow-lab" / "warehouse.duckdb")).parent
    / "reports"
)
REVENUE_STATUSES = {"completed", "shipped"}


# ---------------------------------------------------------------------------------------------
# Extract. The plain script's `httpx.get` + `raise_for_status()`, now inside a task with a retry
# policy. A 503 or a timeout raises, Prefect waits and runs the task again; only when the retries
# are used up does the task (and the flow) fail.
# ---------------------------------------------------------------------------------------------
# Why these numbers: upstream blips in class last a request or two, so 3 retries 1 s apart ride them
# out without making anyone wait. The timeout lives in the HTTP client: 5 s turns a hung request into
# an error Prefect can retry. (A task-level `timeout_seconds` cannot interrupt a blocking request in a
# worker thread, Prefect warns about exactly that, so the client's timeout is the one that counts.)
@task(retries=3, retry_delay_seconds=1)
def fetch_orders_page(page: int, page_size: int) -> dict[str, Any]:
    """Fetch one page of orders from the upstream; raise on any HTTP error so Prefect can retry."""
    response = httpx.get(f"{UPSTREAM_URL}/orders", params={"page": page, "page_size": page_size}, timeout=5)
    response.raise_for_status()
    return response.json()


# ---------------------------------------------------------------------------------------------
# Validate. Instead of `.get(...) or 0`, say what a good order looks like and check every record
# against it. A record that does not fit is set aside with the reason, never silently "fixed".
# ---------------------------------------------------------------------------------------------
class Order(BaseModel):
    """One order as the report needs it: every field present, of the right type and range."""

    order_id: int
    customer_id: int
    amount: Annotated[float, Field(ge=0)]
    currency: Literal["EUR"]
    status: Literal["completed", "shipped", "returned", "cancelled"]
    ordered_at: datetime


@task
def validate_orders(records: list[dict[str, Any]]) -> tuple[list[Order], list[dict[str, Any]]]:
    """Split records into valid orders and quarantined ones, each with the reason it was rejected."""
    valid: list[Order] = []
    quarantined: list[dict[str, Any]] = []
    for record in records:
        try:
            valid.append(Order.model_validate(record))
        except ValidationError as error:
            reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            quarantined.append({"order_id": record.get("order_id"), "reason": reasons, "record": repr(record)})
    return valid, quarantined


# ---------------------------------------------------------------------------------------------
# Transform: the same business rule as the plain script, on data we now trust.
# ---------------------------------------------------------------------------------------------
@task
def daily_revenue(orders: list[Order]) -> list[dict[str, Any]]:
    """Sum the amounts of revenue-earning orders per day, one row per day."""
    revenue: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for order in orders:
        if order.status in REVENUE_STATUSES:
            day = order.ordered_at.date().isoformat()
            revenue[day] += order.amount
            count[day] += 1
    return [{"day": day, "orders": count[day], "revenue_eur": round(revenue[day], 2)} for day in sorted(revenue)]


# ---------------------------------------------------------------------------------------------
# Load: the report, plus what the plain script never wrote down: what was dropped, and why.
# Artifacts appear on the flow run's page in the UI (Artifacts tab).
# ---------------------------------------------------------------------------------------------
@task
def publish(days: list[dict[str, Any]], quarantined: list[dict[str, Any]], summary: dict[str, Any]) -> Path:
    """Write the CSV report and the run's artifacts: revenue per day, quarantine, reconciliation."""
    REPORTS_DIR.mkdir(parents=True, exist_ok=True)
    path = REPORTS_DIR / "daily_revenue.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["day", "orders", "revenue_eur"])
        writer.writeheader()
        writer.writerows(days)
    create_table_artifact(
        key="negative-engineering-daily-revenue", table=days, description="Revenue per day (valid orders only)."
    )
    create_table_artifact(
        key="negative-engineering-quarantine",
        table=quarantined or [{"order_id": None, "reason": "nothing quarantined", "record": ""}],
        description="Records set aside instead of corrupting the report, with the reason.",
    )
    create_table_artifact(
        key="negative-engineering-reconciliation", table=[summary], description="fetched = kept + quarantined"
    )
    create_markdown_artifact(
        key="negative-engineering-summary",
        markdown=(
            f"**{summary['fetched']}** orders fetched: **{summary['kept']}** kept, **{summary['quarantined']}** quarantined.  \n"
            f"Revenue from {summary['revenue_orders']} completed/shipped orders: **EUR {summary['total_revenue_eur']:.2f}**."
        ),
    )
    return path


# ---------------------------------------------------------------------------------------------
# The flow: wire the steps together, then reconcile. If the counts do not add up, fail loudly:
# a failed run is visible, a wrong report is not.
# ---------------------------------------------------------------------------------------------
@flow(name="negative-engineering", log_prints=True)
def negative_engineering(page_size: Annotated[int, Field(ge=1, le=500)] = 500) -> dict[str, Any]:
    """Fetch every order, quarantine malformed records, and publish a reconciled daily revenue report."""
    first = fetch_orders_page(1, page_size)
    pages = range(2, -(-first["total"] // page_size) + 1)  # ceiling division: how many pages in all
    rest = [future.result() for future in fetch_orders_page.map(list(pages), page_size)]
    records = [record for body in [first, *rest] for record in body["records"]]

    valid, quarantined = validate_orders(records)
    days = daily_revenue(valid)

    summary = {
        "fetched": len(records),
        "kept": len(valid),
        "quarantined": len(quarantined),
        "revenue_orders": sum(day["orders"] for day in days),
        # Summed from the orders, not from the rounded daily rows, so the total is exact to the cent.
        "total_revenue_eur": round(sum(order.amount for order in valid if order.status in REVENUE_STATUSES), 2),
    }
    if summary["kept"] + summary["quarantined"] != summary["fetched"] or summary["fetched"] != first["total"]:
        raise ValueError(f"counts do not reconcile: {summary}, upstream total {first['total']}")
    path = publish(days, quarantined, summary)
    print(
        f"{summary['fetched']} fetched, {summary['kept']} kept, {summary['quarantined']} quarantined; "
        f"EUR {summary['total_revenue_eur']:.2f} from {summary['revenue_orders']} orders; report at {path}"
    )
    return summary


if __name__ == "__main__":
    negative_engineering()
