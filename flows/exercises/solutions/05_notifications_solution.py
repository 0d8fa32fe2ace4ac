"""
# Solution 05 · Notifications: tell the team about big orders, through the lab's Slack block

How to run it: `.venv/bin/python flows/exercises/solutions/05_notifications_solution.py` with the
lab up, then open the inbox (http://localhost:8701): the message is there. With `fail=True`
(`big_orders(fail=True)` from Python) the run fails on purpose and the lab's automation
`notify-on-failed-flow-runs` posts about it: nothing in this file sends that one.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx
from prefect import flow, task
from prefect.runtime import flow_run
from prefect_slack import SlackWebhook
from prefect_slack.messages import send_incoming_webhook_message

UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")
SLACK_BLOCK = "workshop-slack"


# Why these numbers: 3 retries 1 s apart ride out an upstream blip; a notification an hour late is useless.
@task(retries=3, retry_delay_seconds=1)
async def first_page_of_orders() -> list[dict[str, Any]]:
    """The first 100 orders."""
    async with httpx.AsyncClient(base_url=UPSTREAM_URL, timeout=10) as client:
        response = await client.get("/orders", params={"page": 1, "page_size": 100})
        response.raise_for_status()
        return response.json()["records"]


@flow(name="big-orders", log_prints=True)
async def big_orders(threshold: float = 100.0, fail: bool = False) -> str:
    """Count the orders on page 1 above a threshold and post it through the workshop-slack block."""
    orders = await first_page_of_orders()
    big = [o for o in orders if o["amount"] > threshold]
    text = f"{len(big)} orders above {threshold:g} EUR on page 1 (flow run {flow_run.name})"
    # Awaited: prefect-slack's task is async. Called from a plain `def` flow without await, it sends nothing.
    await send_incoming_webhook_message(slack_webhook=await SlackWebhook.load(SLACK_BLOCK), text=text)
    print(f"sent: {text}")
    if fail:
        raise RuntimeError("Failing on purpose: the lab's automation reports this run, not this flow")
    return text


if __name__ == "__main__":
    asyncio.run(big_orders())
