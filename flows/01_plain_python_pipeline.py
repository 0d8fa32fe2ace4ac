"""
# 01a · The plain-Python pipeline: what "negative engineering" protects you from

What you will learn
- How an ordinary script fails when its upstream misbehaves. No Prefect here at all: this is the
  "before" picture that `01_negative_engineering.py` (the "after") fixes.
- The two kinds of failure production pipelines meet:
  1. **Loud** failures: a 5xx answer or a request that hangs. The script dies, and the whole run's
     work is lost; someone must notice and rerun it by hand.
  2. **Silent** failures: malformed records (a missing field, an amount that is a string, a status
     that is null). The script "succeeds" and writes a wrong number that nobody questions.

How to run it (plain Python, in your terminal, against the lab's flaky upstream)
- Calm upstream, the right answer:   `.venv/bin/python flows/01_plain_python_pipeline.py`
- Make the upstream fail its next two requests, then run again; the script dies on a 503:
      curl -X PATCH localhost:8700/chaos -H 'content-type: application/json' -d '{"fail_next": 2}'
- Make 2% of the records malformed, then run again; it crashes, or worse, prints a wrong total:
      curl -X PATCH localhost:8700/chaos -H 'content-type: application/json' -d '{"malformed_rate": 0.02}'
- Put the upstream back: `curl -X POST localhost:8700/chaos/reset`

Walkthrough
The script pages through GET /orders, keeps the orders that earn revenue (completed or shipped),
sums their amounts per day and writes `daily_revenue_plain.csv`. Every line is reasonable on its own;
the comments marked `# FRAGILE:` show where each failure gets in.
"""

from __future__ import annotations

import csv
import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import httpx

# The lab sets LAB_UPSTREAM_URL for its worker, its Dask workers and every process of its venv (your shell).
UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")
# Reports go next to the lab's warehouse (the lab's data folder); outside the lab, to a temp folder.
REPORTS_DIR = (
    Path(os.environ.get("LAB_WAREHOUSE_PATH", Path(tempfile.gettempdir()) / "workflow-lab" / "warehouse.duckdb")).parent
    / "reports"
)
PAGE_SIZE = 500  # the upstream's largest page
REVENUE_STATUSES = {"completed", "shipped"}


# ---------------------------------------------------------------------------------------------
# Extract: page through the orders. One bad answer and everything fetched so far is thrown away.
# ---------------------------------------------------------------------------------------------
def fetch_all_orders() -> list[dict]:
    """Fetch every order from the upstream, page by page."""
    orders: list[dict] = []
    page = 1
    while True:
        # FRAGILE: no retry. A hang costs the full timeout, then an exception ends the run.
        response = httpx.get(f"{UPSTREAM_URL}/orders", params={"page": page, "page_size": PAGE_SIZE}, timeout=10)
        # FRAGILE: one 503 (a blip that would have passed a second later) kills the whole run.
        response.raise_for_status()
        body = response.json()
        orders += body["records"]
        if page * PAGE_SIZE >= body["total"]:
            return orders
        page += 1


# ---------------------------------------------------------------------------------------------
# Transform: the "defensive" code people write after the first crash. `.get()` and `or 0` stop the
# crashes on missing fields, and turn them into wrong numbers instead.
# ---------------------------------------------------------------------------------------------
def daily_revenue(orders: list[dict]) -> dict[str, float]:
    """Sum the amounts of revenue-earning orders per day."""
    revenue: dict[str, float] = defaultdict(float)
    for order in orders:
        # FRAGILE: a null or garbled status ("shipped ??") silently drops a paying order.
        if order.get("status") not in REVENUE_STATUSES:
            continue
        # FRAGILE: a missing date files the order under a day called "None".
        day = str(order.get("ordered_at"))[:10]
        # FRAGILE: a missing or null amount silently counts as 0; "42.5 ??" crashes with ValueError.
        revenue[day] += float(order.get("amount") or 0)
    return dict(revenue)


# ---------------------------------------------------------------------------------------------
# Load: write the report. Nothing here records how many orders came in, or how many were dropped.
# ---------------------------------------------------------------------------------------------
def write_report(revenue: dict[str, float], path: Path) -> None:
    """Write one row per day: the day and its revenue."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["day", "revenue_eur"])
        for day in sorted(revenue):
            writer.writerow([day, round(revenue[day], 2)])


def main() -> int:
    """Run the pipeline once; return the process exit code."""
    orders = fetch_all_orders()
    revenue = daily_revenue(orders)
    path = REPORTS_DIR / "daily_revenue_plain.csv"
    write_report(revenue, path)
    print(f"fetched {len(orders)} orders, wrote {len(revenue)} days to {path}")
    print(f"TOTAL REVENUE EUR {sum(revenue.values()):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
