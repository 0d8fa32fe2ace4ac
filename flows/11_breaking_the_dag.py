"""
# 11 · Breaking the DAG: a flow whose shape is decided while it runs

What you will learn
- Many orchestrators want the whole graph of tasks declared before anything runs (a DAG). A Prefect
  flow is plain Python: `while`, `if`/`else` and a fan-out sized by a list you just fetched are all
  allowed, and the graph you see in the UI is the one that actually happened.
- A task does not have to be declared with `@task` ahead of time. `task(fn)` turns any plain Python
  function into a task *at run time*, and `.with_options(...)` makes a variant of a task (a new name,
  other retries) on the spot. Nothing is pre-registered with the server: task runs appear as the flow
  creates them.
- Run the same flow with other parameters (or on other data) and you get a different graph: other
  branches, more or fewer pages, a wider or narrower fan-out.

How to run it
- `./lab run breaking-the-dag/breaking-the-dag` (defaults: scan 300 orders, alert when more than 3%
  were returned), then open the run's page: the graph shows page fetches one after another, then the
  branch the data chose. Run it again with other parameters and compare the two graphs:
      ./lab run breaking-the-dag/breaking-the-dag --param max_orders=40 --param page_size=15
      ./lab run breaking-the-dag/breaking-the-dag --param return_alert_rate=0.5
- As a plain script, against the lab's upstream: `.venv/bin/python flows/11_breaking_the_dag.py`

Walkthrough
1. Plain Python functions, no decorators: fetch a page of orders, the customers, a city's weather.
2. A `while` loop pages through /orders until a page comes back short (or we have enough).
3. `if`/`else` on the data: a high share of returned orders starts an investigation, otherwise a
   one-task "all clear".
4. The investigation fans out over however many cities the returning customers live in.
"""

from __future__ import annotations

import os
from statistics import fmean
from typing import Annotated, Any

import httpx
from prefect import flow, task
from prefect.artifacts import create_table_artifact
from pydantic import Field

# The lab sets LAB_UPSTREAM_URL for every process that runs flows; this default is the embedded lab's.
UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")

# Where the upstream has weather: one city per customer country. Customers in other countries
# (US, GB, FR) have no city, so they widen nothing.
CITY_OF_COUNTRY = {
    "DE": "Berlin",
    "NG": "Lagos",
    "PE": "Lima",
    "IN": "Mumbai",
    "NO": "Oslo",
    "AU": "Sydney",
    "CA": "Toronto",
}


# ---------------------------------------------------------------------------------------------
# 1. Plain functions. No @task here: they are ordinary Python you could call from anywhere, and
#    the flow below decides at run time which of them become tasks, under which names.
# ---------------------------------------------------------------------------------------------
def get_json(path: str, **params: Any) -> dict[str, Any]:
    """GET a path of the upstream and return its JSON (an HTTP error raises)."""
    response = httpx.get(f"{UPSTREAM_URL}{path}", params=params, timeout=10)
    response.raise_for_status()
    return response.json()


def fetch_orders_page(page: int, page_size: int) -> list[dict[str, Any]]:
    """One page of orders."""
    return get_json("/orders", page=page, page_size=page_size)["records"]


def fetch_customer_countries() -> dict[int, str]:
    """Every customer's country, by customer id (the upstream has 500 customers: one page)."""
    return {c["customer_id"]: c.get("country") for c in get_json("/customers", page=1, page_size=500)["records"]}


def mean_temperature(city: str, hours: int) -> float:
    """A city's mean temperature over its last `hours` hourly readings."""
    readings = get_json("/weather", city=city, hours=hours)["records"]
    return round(
        fmean(float(r["temperature_c"]) for r in readings if isinstance(r.get("temperature_c"), (int, float))), 1
    )


def all_clear(returned: int, scanned: int) -> str:
    """The short branch: nothing to investigate."""
    return f"all clear: {returned} of {scanned} orders returned"


# Every task made below calls the upstream, so each gets the same retry policy. Why these numbers:
# 3 retries 1 s apart ride out an upstream blip without keeping the class waiting.
NETWORK_RETRIES = {"retries": 3, "retry_delay_seconds": 1}


# ---------------------------------------------------------------------------------------------
# 2-4. The flow. Read it as a script: each `task(fn, ...)` turns a function into a task right
#      where it is needed, and the loop, the branch and the fan-out are ordinary Python.
# ---------------------------------------------------------------------------------------------
@flow(name="breaking-the-dag", log_prints=True)
def breaking_the_dag(
    max_orders: Annotated[int, Field(ge=1, le=5000, description="Stop paging once this many orders are in.")] = 300,
    page_size: Annotated[int, Field(ge=1, le=500, description="Orders per page (the upstream allows 500).")] = 100,
    return_alert_rate: Annotated[
        float, Field(ge=0, le=1, description="Investigate when more than this share was returned.")
    ] = 0.03,
) -> dict[str, Any]:
    """Page through orders until the data says stop, then branch and fan out as the data dictates."""
    # 2. A while loop: how many pages is not known until a page comes back short.
    fetch_page = task(fetch_orders_page, task_run_name="orders-page-{page}", **NETWORK_RETRIES)
    orders: list[dict[str, Any]] = []
    page = 1
    while True:
        records = fetch_page(page, page_size)
        orders += records
        if len(records) < page_size or len(orders) >= max_orders:
            break
        page += 1
    orders = orders[:max_orders]
    returned = [o for o in orders if o.get("status") == "returned"]
    rate = len(returned) / len(orders) if orders else 0.0
    print(f"{len(orders)} orders in {page} page(s), {len(returned)} returned ({rate:.1%})")

    # 3. if/else on the data: which tasks exist at all depends on what came back.
    if rate <= return_alert_rate:
        verdict = task(all_clear, name="all-clear")(len(returned), len(orders))
        print(verdict)
        return {"pages": page, "orders": len(orders), "returned": len(returned), "branch": "all-clear", "cities": {}}

    # 4. The investigation: where do the returning customers live? One weather task per city found,
    #    so the fan-out is as wide as the data makes it (none at all if nobody lives near a city).
    countries = task(fetch_customer_countries, name="customer-countries", **NETWORK_RETRIES)()
    cities = sorted(
        {CITY_OF_COUNTRY[c] for o in returned if (c := countries.get(o.get("customer_id"))) in CITY_OF_COUNTRY}
    )
    weather = task(mean_temperature, **NETWORK_RETRIES).with_options(
        name="city-weather", task_run_name="weather-{city}"
    )
    temperatures = dict(zip(cities, [future.result() for future in weather.map(cities, hours=24)], strict=True))
    rows = [
        {
            "city": city,
            "returns": sum(1 for o in returned if CITY_OF_COUNTRY.get(countries.get(o.get("customer_id"), "")) == city),
            "mean_temperature_c": temperatures[city],
        }
        for city in cities
    ]
    create_table_artifact(
        key="returns-by-city",
        table=rows,
        description="Returned orders by the customer's city, with the city's weather.",
    )
    print(f"investigated {len(returned)} returns across {len(cities)} cities: {temperatures}")
    return {
        "pages": page,
        "orders": len(orders),
        "returned": len(returned),
        "branch": "investigate",
        "cities": temperatures,
    }


if __name__ == "__main__":
    breaking_the_dag()
