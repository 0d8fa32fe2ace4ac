"""
# 04 · Deployments and schedules: let the server start your runs

What you will learn
- A *deployment* (an entry in `prefect.yaml`) is a flow plus everything needed to run it without
  you: the work pool whose worker runs it, default parameters, and *schedules*.
- A schedule is data on the server, not code in the flow. The server's *scheduler* service reads
  each active schedule and creates future flow runs in state `Scheduled` (the UI's "Upcoming" runs);
  when one comes due, the worker picks it up like any other run. Nobody clicks "Run".
- Two kinds are used here: `interval:` (every N seconds, counted from an `anchor_date`) and `cron:`
  (calendar rules such as "07:30 on weekdays", in a `timezone`). A schedule can carry its own
  `parameters`, so one deployment can run at 07:30 for Berlin and at 08:00 for Oslo.
- `active: false` ships a schedule paused: it is on the deployment, visible in the UI, and creates
  nothing until someone resumes it. That is how this lab keeps busy schedules from flooding your
  laptop with runs.

How to run it
- Nothing to run: after `./lab up` the `hello-schedule` deployment is already on an active 60-second
  interval. Open the UI → Deployments → hello-schedule: "Upcoming" lists the runs the scheduler has
  created; Runs shows the ones the worker finished, one a minute, each saying hello.
- Deployments → orders-digest shows two schedules, both paused. Resume one (the toggle next to it,
  or `.venv/bin/prefect deployment schedule resume orders-digest/orders-digest SCHEDULE_ID`) and watch runs
  appear under "Upcoming"; pause it again when you have seen enough. Pausing deletes the runs the
  schedule had created but not started.
  A trap in Prefect 3.9.1: an update that sends only `active` (PATCH .../schedules/ID, which is what
  what the CLI's `deployment schedule resume` and `pause` send) also resets that schedule's `parameters` to {}.
  After resuming the 07:30 schedule, check it still says `pages: 10`
  (`.venv/bin/prefect deployment schedule ls orders-digest/orders-digest`); exercise 04 shows how to flip
  `active` without losing them.
- `./lab run orders-digest/orders-digest` runs the digest once, now, schedule or not.
- As a plain script (no deployment, no schedule): `.venv/bin/python flows/04_schedules.py`

The schedules live in `prefect.yaml`, next to the deployments:

    - name: hello-schedule
      entrypoint: 04_schedules.py:hello_schedule
      schedules:
        - interval: 60                      # seconds
          anchor_date: "2026-01-01T00:00:00Z"
          active: true                      # the one demo schedule that runs on its own

    - name: orders-digest
      entrypoint: 04_schedules.py:orders_digest
      schedules:
        - cron: "*/5 * * * *"               # every 5 minutes: would flood the lab, so paused
          timezone: UTC
          active: false
        - cron: "30 7 * * 1-5"              # weekdays 07:30 Berlin time, a bigger digest
          timezone: Europe/Berlin
          parameters: {pages: 10}
          active: false

Walkthrough: a tiny flow for the active schedule (it reads *when* it was meant to run, which a
scheduled run knows), then a small digest flow that the paused schedules would run.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Annotated, Any

import httpx
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run
from pydantic import Field

# The lab sets LAB_UPSTREAM_URL for every process that runs flows; this default is the embedded lab's.
UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")


# ---------------------------------------------------------------------------------------------
# 1. The flow behind the active demo schedule: as small as a flow can be. A run created by a
#    schedule knows the time it was *scheduled* for; comparing it with the time it actually started
#    shows the delay between "due" and "picked up by the worker" (the worker polls every 2 s).
# ---------------------------------------------------------------------------------------------
@flow(name="hello-schedule", log_prints=True)
def hello_schedule(greeting: str = "hello") -> str:
    """Say hello, and say whether a schedule or a person started this run."""
    scheduled_for = flow_run.scheduled_start_time
    started_by = "the scheduler" if _auto_scheduled() else "a person or a script, not a schedule"
    message = (
        f"{greeting} from {flow_run.name or 'a local run'}: scheduled for {scheduled_for}, started by {started_by}"
    )
    print(message)
    return message


def _auto_scheduled() -> bool:
    """True when the server's scheduler created this run (the API marks such runs `auto_scheduled`)."""
    run_id = flow_run.id
    if run_id is None:  # a plain script run has no flow run on a deployment
        return False
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return bool(client.read_flow_run(run_id).auto_scheduled)


# ---------------------------------------------------------------------------------------------
# 2. The flow behind the paused schedules: count recent orders by status and publish a short
#    digest as a markdown artifact. Scheduled flows run with nobody watching, so the artifact (on
#    the run's page, and under Artifacts → orders-digest) is how a person reads the result later.
#    Why these retry numbers: 3 retries 2 s apart ride out an upstream blip; a scheduled job that
#    still fails is simply tried again at its next slot.
# ---------------------------------------------------------------------------------------------
@task(retries=3, retry_delay_seconds=2)
def fetch_orders_page(page: int, page_size: int) -> list[dict[str, Any]]:
    """Fetch one page of orders from the upstream."""
    response = httpx.get(f"{UPSTREAM_URL}/orders", params={"page": page, "page_size": page_size}, timeout=10)
    response.raise_for_status()
    return response.json()["records"]


@flow(name="orders-digest", log_prints=True)
def orders_digest(
    pages: Annotated[int, Field(ge=1, le=10)] = 2, page_size: Annotated[int, Field(ge=1, le=500)] = 100
) -> dict[str, int]:
    """Count the first pages of orders by status and publish the counts as a markdown digest."""
    statuses: Counter[str] = Counter()
    for page in range(1, pages + 1):
        statuses.update(str(order.get("status")) for order in fetch_orders_page(page, page_size))
    lines = [f"| {status} | {count} |" for status, count in statuses.most_common()]
    create_markdown_artifact(
        key="orders-digest",
        markdown="\n".join(
            [f"# Orders digest ({sum(statuses.values())} orders)", "", "| status | orders |", "| --- | --- |", *lines]
        ),
        description="Orders by status, as of this run.",
    )
    print(f"digest of {sum(statuses.values())} orders: {dict(statuses)}")
    return dict(statuses)


if __name__ == "__main__":
    hello_schedule()
    orders_digest()
