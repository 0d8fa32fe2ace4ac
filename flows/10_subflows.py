"""
# 10 · Subflows and the flow of flows: one parent, many children

What you will learn
- A flow can call another flow. The called one is a *subflow*: it runs right there, in the parent's
  process, and gets its own flow run (own page, own logs, own task runs) linked to the parent. Use it
  to give a group of steps a name and a boundary, like a function, with its own retries and states.
- `run_deployment(...)` starts a *deployed* flow from inside a flow: the worker runs the child in
  its own process (it could be another machine, another image). Called from a flow, the child run is
  linked to the parent too. With `timeout=` the parent waits up to that long for the child to finish;
  `timeout=0` would start it and move on ("fire and forget").
- How the links look in the API: every child flow run has a `parent_task_run_id`. It points to a
  task run *inside the parent flow run* that stands for the child: for a subflow, the call itself;
  for `run_deployment`, a task run named after the deployment.
- A deployed child's return value reaches the parent only through result storage: the child
  persists it (`persist_result=True`) to storage every process of the lab shares, and the parent
  reads it with `state.result()`.

How to run it
- `./lab run flow-of-flows/flow-of-flows`, then open the run's page. The graph shows the two
  subflows (extract-orders, summarize-orders) and one box per child deployment run; click a box to
  jump to the child's own run page. Runs → filter by flow "city-weather" shows the children with
  their parent named at the top of each page.
- Run one child on its own: `./lab run city-weather/city-weather --param city=Lima`
- As a plain script (the subflows run, the deployments are started on the lab's worker):
  `.venv/bin/python flows/10_subflows.py`. On the embedded lab only: on the Docker lab the children's
  results stay in the lab's volume, where a flow in your shell cannot read them.

Walkthrough
1. A task and two subflows: extract orders, summarize them.
2. The child flow that has its own deployment: one city's weather.
3. The parent: calls the subflows, then fans out to deployments with run_deployment and waits.
"""

from __future__ import annotations

import os
from collections import Counter
from statistics import fmean
from typing import Annotated, Any, Literal

import httpx
from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.deployments import run_deployment
from prefect.runtime import flow_run
from pydantic import Field

# The lab sets LAB_UPSTREAM_URL for every process that runs flows; this default is the embedded lab's.
UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")
City = Literal["Berlin", "Lagos", "Lima", "Mumbai", "Oslo", "Sydney", "Toronto"]

# The deployments this parent starts (both in prefect.yaml). hello-lab is module 00's flow.
CITY_WEATHER_DEPLOYMENT = "city-weather/city-weather"
HELLO_DEPLOYMENT = "hello-lab/hello-lab"
# How long the parent waits for each child. The worker polls every 2 s and a child takes a few
# seconds; 3 minutes leaves room for a busy laptop. A child still running after that is reported
# as such, not awaited forever.
CHILD_TIMEOUT_SECONDS = 180


# ---------------------------------------------------------------------------------------------
# 1. Two subflows. They are ordinary flows; what makes them subflows is being called from a flow.
#    Why these retry numbers: 3 retries 1 s apart ride out an upstream blip in class.
# ---------------------------------------------------------------------------------------------
@task(retries=3, retry_delay_seconds=1)
def fetch_orders_page(page: int, page_size: int) -> list[dict[str, Any]]:
    """Fetch one page of orders from the upstream."""
    response = httpx.get(f"{UPSTREAM_URL}/orders", params={"page": page, "page_size": page_size}, timeout=10)
    response.raise_for_status()
    return response.json()["records"]


@flow(name="extract-orders")
def extract_orders(pages: int, page_size: int) -> list[dict[str, Any]]:
    """Subflow: fetch the first pages of orders."""
    return [order for page in range(1, pages + 1) for order in fetch_orders_page(page, page_size)]


@flow(name="summarize-orders")
def summarize_orders(orders: list[dict[str, Any]]) -> dict[str, int]:
    """Subflow: count orders by status."""
    return dict(Counter(str(order.get("status")) for order in orders).most_common())


# ---------------------------------------------------------------------------------------------
# 2. The child with its own deployment (city-weather). persist_result=True writes its return value
#    to the lab's result storage, so the parent, in another process, can read it.
# ---------------------------------------------------------------------------------------------
@task(retries=3, retry_delay_seconds=1)
def fetch_weather(city: City, hours: int) -> list[dict[str, Any]]:
    """Fetch hourly weather readings for one city."""
    response = httpx.get(f"{UPSTREAM_URL}/weather", params={"city": city, "hours": hours}, timeout=10)
    response.raise_for_status()
    return response.json()["records"]


@flow(name="city-weather", persist_result=True, log_prints=True)
def city_weather(city: City = "Berlin", hours: Annotated[int, Field(ge=1, le=744)] = 24) -> dict[str, Any]:
    """Child flow: one city's mean temperature over the last hours."""
    temperatures = [
        r["temperature_c"] for r in fetch_weather(city, hours) if isinstance(r.get("temperature_c"), (int, float))
    ]
    summary = {"city": city, "hours": hours, "mean_c": round(fmean(temperatures), 1)}
    print(summary)
    return summary


# ---------------------------------------------------------------------------------------------
# 3. The parent. Each run_deployment call is wrapped in a task so the children are started (and
#    awaited) at the same time rather than one after another. The idempotency key makes starting a
#    child safe to retry: the server returns the run it already made for that key instead of a
#    second one. Why these retry numbers: 1 retry after 2 s covers a hiccup talking to the API.
# ---------------------------------------------------------------------------------------------
@task(retries=1, retry_delay_seconds=2, task_run_name="start-{deployment}")
def run_child(deployment: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """Run a deployment as a child of this flow run, wait for it, and report its state and result."""
    key = f"{flow_run.id}:{deployment}:{sorted(parameters.items())}"
    child = run_deployment(deployment, parameters=parameters, timeout=CHILD_TIMEOUT_SECONDS, idempotency_key=key)
    state = child.state
    result = (
        state.result(raise_on_failure=False)
        if state and state.is_completed() and deployment == CITY_WEATHER_DEPLOYMENT
        else None
    )
    return {
        "deployment": deployment,
        "parameters": str(parameters),
        "child_run": child.name,
        "state": state.type.value if state else "UNKNOWN",
        "result": str(result) if result is not None else "",
    }


@flow(name="flow-of-flows", log_prints=True)
def flow_of_flows(
    pages: Annotated[int, Field(ge=1, le=10)] = 2,
    page_size: Annotated[int, Field(ge=1, le=500)] = 100,
    cities: Annotated[list[City], Field(max_length=7)] = ["Berlin", "Oslo"],
    hello_items: Annotated[int, Field(ge=0, le=8, description="Tasks for the hello-lab child; 0 skips it.")] = 2,
) -> dict[str, Any]:
    """Call two subflows, then run the city-weather deployment per city (and hello-lab) as child runs and wait for them."""
    orders = extract_orders(pages, page_size)
    by_status = summarize_orders(orders)
    print(f"{len(orders)} orders by status: {by_status}")

    children: list[tuple[str, dict[str, Any]]] = [(CITY_WEATHER_DEPLOYMENT, {"city": city}) for city in cities]
    if hello_items:
        children.append((HELLO_DEPLOYMENT, {"items": hello_items}))
    futures = [run_child.submit(deployment, parameters) for deployment, parameters in children]
    reports = [future.result() for future in futures]

    create_table_artifact(
        key="flow-of-flows-children",
        table=reports,
        description="Each child deployment run, its final state and result.",
    )
    unfinished = [r for r in reports if r["state"] != "COMPLETED"]
    if unfinished:
        raise RuntimeError(f"{len(unfinished)} child run(s) did not complete: {unfinished}")
    print(f"{len(reports)} child runs completed: {[r['result'] or r['child_run'] for r in reports]}")
    return {"orders_by_status": by_status, "children": reports}


if __name__ == "__main__":
    flow_of_flows()
