"""Module 01, negative engineering: on the same chaos (two 503s, 2% malformed records, a fixed seed)
the plain script fails, and the Prefect flow's deployment run COMPLETES with counts that reconcile
with what the upstream actually sent."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx
import pytest

from workshop_lab.course_services.upstream import ORDERS, order
from workshop_lab.stack.settings import REPO_ROOT

pytestmark = pytest.mark.stack

PLAIN_SCRIPT = REPO_ROOT / "flows" / "01_plain_python_pipeline.py"
DEPLOYMENT = "negative-engineering/negative-engineering"
CHAOS = {"fail_next": 2, "malformed_rate": 0.02, "seed": 7}
REVENUE_STATUSES = {"completed", "shipped"}


def set_chaos(upstream: httpx.Client, **chaos) -> None:
    """Start from the upstream's calm settings (and fresh /stats), then apply `chaos`."""
    upstream.post("/chaos/reset").raise_for_status()
    upstream.patch("/chaos", json=chaos).raise_for_status()


def true_revenue(excluded_ids: set[int] = frozenset()) -> float:
    """The right answer, from the upstream's own deterministic data."""
    orders = (order(i) for i in range(1, ORDERS + 1) if i not in excluded_ids)
    return round(sum(o["amount"] for o in orders if o["status"] in REVENUE_STATUSES), 2)


def run_plain_script(embedded_lab, upstream: httpx.Client, tmp_path) -> subprocess.CompletedProcess:
    env = {
        **embedded_lab.env,
        "LAB_UPSTREAM_URL": str(upstream.base_url).rstrip("/"),
        "LAB_WAREHOUSE_PATH": str(tmp_path / "warehouse.duckdb"),
    }
    return subprocess.run([sys.executable, str(PLAIN_SCRIPT)], env=env, capture_output=True, text=True, timeout=120)


def printed_total(result: subprocess.CompletedProcess) -> float | None:
    match = re.search(r"TOTAL REVENUE EUR ([\d.]+)", result.stdout)
    return float(match.group(1)) if match else None


def test_plain_script_gets_the_right_total_on_a_calm_upstream(embedded_lab, upstream, tmp_path):
    result = run_plain_script(embedded_lab, upstream, tmp_path)
    assert result.returncode == 0, result.stderr
    assert printed_total(result) == pytest.approx(true_revenue(), abs=0.01)


def test_plain_script_fails_on_the_chaos(embedded_lab, upstream, tmp_path):
    set_chaos(upstream, **CHAOS)
    result = run_plain_script(embedded_lab, upstream, tmp_path)
    assert result.returncode != 0, "a 503 should end the plain script's run"
    assert "503 Service Unavailable" in result.stderr, result.stderr[-2000:]

    # Once the 503s are over, the malformed records remain: the script crashes, or prints a wrong total.
    result = run_plain_script(embedded_lab, upstream, tmp_path)
    total = printed_total(result)
    assert result.returncode != 0 or total != pytest.approx(true_revenue(), abs=0.01), (
        result.stdout,
        result.stderr[-2000:],
    )


def test_flow_completes_on_the_same_chaos_and_its_counts_reconcile(embedded_lab, upstream):
    set_chaos(upstream, **CHAOS)
    run = embedded_lab.run_deployment(DEPLOYMENT)
    assert run["state"]["type"] == "COMPLETED", run["state"]

    # The two 503s hit the first page's task, which retried through them.
    fetches = [t for t in embedded_lab.task_runs(run["id"]) if t["task_key"].startswith("fetch_orders_page")]
    assert sorted(t["run_count"] for t in fetches)[-1] == 3, [(t["name"], t["run_count"]) for t in fetches]
    assert all(t["state"]["type"] == "COMPLETED" for t in fetches)

    # Every record is accounted for: kept + quarantined = fetched = every order, and exactly the
    # records the upstream broke were quarantined, each with a reason.
    [summary] = embedded_lab.table_artifact(run["id"], "negative-engineering-reconciliation")
    stats = upstream.get("/stats").json()
    assert stats["malformed_records"] > 0, stats
    assert summary["fetched"] == ORDERS
    assert summary["kept"] + summary["quarantined"] == summary["fetched"]
    assert summary["quarantined"] == stats["malformed_records"], (summary, stats)

    quarantined = embedded_lab.table_artifact(run["id"], "negative-engineering-quarantine")
    assert len(quarantined) == summary["quarantined"]
    assert all(row["reason"] for row in quarantined)

    # The report's total is right to the cent for the orders it kept.
    quarantined_ids = {int(row["order_id"]) for row in quarantined}
    assert summary["total_revenue_eur"] == pytest.approx(true_revenue(quarantined_ids), abs=0.01)
    days = embedded_lab.table_artifact(run["id"], "negative-engineering-daily-revenue")
    assert sum(day["orders"] for day in days) == summary["revenue_orders"]
