"""
# Exercise 05 · Notifications: your starting point (flows/exercises/05_notifications.md)

Copy it, then make `./lab check 05` pass:
    mkdir -p flows/mine && cp flows/exercises/starters/05_notifications.py flows/mine/
    .venv/bin/python flows/mine/05_notifications.py     # then look at http://localhost:8701
    ./lab check 05
"""

from __future__ import annotations

import os
from typing import Any

import httpx
from prefect import flow, task
from prefect.runtime import flow_run
from prefect_slack import SlackWebhook
from prefect_slack.messages import send_incoming_webhook_message

UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")
SLACK_BLOCK = "workshop-slack"


# Why these numbers: 3 retries 1 s apart ride out an upstream blip.
@task(retries=3, retry_delay_seconds=1)
def first_page_of_orders() -> list[dict[str, Any]]:
    """The first 100 orders."""
    response = httpx.get(f"{UPSTREAM_URL}/orders", params={"page": 1, "page_size": 100}, timeout=10)
    response.raise_for_status()
    return response.json()["records"]


@flow(name="big-orders", log_prints=True)
def big_orders(threshold: float = 100.0, fail: bool = False) -> str:
    """Count the orders on page 1 above a threshold and post it through the workshop-slack block."""
    orders = first_page_of_orders()
    text = f"{len(orders)} orders on page 1 (flow run {flow_run.name})"  # TODO: only those above the threshold
    # TODO: this runs, and nothing arrives in the inbox. Why? (flows/05_notifications.py knows)
    send_incoming_webhook_message(slack_webhook=SlackWebhook.load(SLACK_BLOCK), text=text)
    # TODO: with fail=True, fail the run on purpose (the lab's automation then reports it)
    return text


if __name__ == "__main__":
    big_orders()
