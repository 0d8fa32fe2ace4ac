"""Module 11, breaking the DAG: one flow, two runs, two different graphs. How many pages are fetched,
which branch runs and how wide the fan-out is are decided by the data at run time; the test works
out what the upstream's data dictates and finds exactly those task runs."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.stack

DEPLOYMENT = "breaking-the-dag/breaking-the-dag"
CITY_OF_COUNTRY = {
    "DE": "Berlin",
    "NG": "Lagos",
    "PE": "Lima",
    "IN": "Mumbai",
    "NO": "Oslo",
    "AU": "Sydney",
    "CA": "Toronto",
}


def what_the_data_dictates(upstream: httpx.Client, max_orders: int, page_size: int, return_alert_rate: float) -> dict:
    """Pages, branch and cities, worked out from the upstream's data independently of the flow."""
    orders, page = [], 0
    while True:
        page += 1
        records = upstream.get("/orders", params={"page": page, "page_size": page_size}).json()["records"]
        orders += records
        if len(records) < page_size or len(orders) >= max_orders:
            break
    returned = [o for o in orders[:max_orders] if o["status"] == "returned"]
    if len(returned) / len(orders[:max_orders]) <= return_alert_rate:
        return {"pages": page, "branch": "all-clear", "cities": set()}
    countries = {
        c["customer_id"]: c["country"] for c in upstream.get("/customers", params={"page_size": 500}).json()["records"]
    }
    cities = {
        CITY_OF_COUNTRY[countries[o["customer_id"]]] for o in returned if countries[o["customer_id"]] in CITY_OF_COUNTRY
    }
    return {"pages": page, "branch": "investigate", "cities": cities}


def graph_of(embedded_lab, parameters: dict) -> list[str]:
    """Run the flow and return the names of the task runs it made."""
    run = embedded_lab.run_deployment(DEPLOYMENT, parameters)
    assert run["state"]["type"] == "COMPLETED", run["state"]
    task_runs = embedded_lab.task_runs(run["id"])
    assert all(t["state"]["type"] == "COMPLETED" for t in task_runs), [
        (t["name"], t["state"]["type"]) for t in task_runs
    ]
    return sorted(t["name"] for t in task_runs)


def test_the_data_decides_the_shape_of_each_run(embedded_lab, upstream):
    small = {"max_orders": 40, "page_size": 15, "return_alert_rate": 0.5}
    large = {"max_orders": 5000, "page_size": 450, "return_alert_rate": 0.0}
    expected_small = what_the_data_dictates(upstream, **small)
    expected_large = what_the_data_dictates(upstream, **large)
    # The two parameter sets lead the data down different paths (checked, not assumed).
    assert expected_small["branch"] == "all-clear" and expected_large["branch"] == "investigate"
    assert expected_small["pages"] != expected_large["pages"] and expected_large["cities"]

    for parameters, expected in ((small, expected_small), (large, expected_large)):
        names = graph_of(embedded_lab, parameters)
        # The while loop: exactly as many page fetches as the data needed, and no more.
        pages = sorted(n for n in names if n.startswith("orders-page-"))
        assert pages == sorted(f"orders-page-{i}" for i in range(1, expected["pages"] + 1)), names
        # The if/else: only the chosen branch's tasks exist.
        clear = [n for n in names if n.startswith("all-clear")]
        investigation = [n for n in names if n.startswith(("customer-countries", "weather-"))]
        if expected["branch"] == "all-clear":
            assert len(clear) == 1 and investigation == [], names
        else:
            assert clear == [], names
            # The fan-out: one weather task per city the returning customers live in.
            assert {n.removeprefix("weather-") for n in names if n.startswith("weather-")} == expected["cities"], names
            assert sum(n.startswith("customer-countries") for n in names) == 1, names
