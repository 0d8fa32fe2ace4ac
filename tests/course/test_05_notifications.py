"""Section 5: a flow sends a Slack message through prefect-slack's block, and the lab's automation
reports a failed flow run — both land in the webhook inbox, with no Slack workspace."""

from __future__ import annotations

import time

import httpx
import pytest

pytestmark = pytest.mark.stack


def inbox_texts(lab) -> list[str]:
    return [m["text"] for m in httpx.get(f"{lab.inbox_url}/messages", timeout=10).json()]


def test_flow_sends_its_message_through_the_slack_block(embedded_lab):
    run = embedded_lab.run_deployment("notifications/notifications", {"message": "Retries are a superpower"})
    assert run["state"]["type"] == "COMPLETED", run["state"]
    assert f"Retries are a superpower (flow run {run['name']})" in inbox_texts(embedded_lab)


def test_failed_flow_run_is_reported_by_the_automation(embedded_lab):
    run = embedded_lab.run_deployment("notifications/notifications", {"fail": True})
    assert run["state"]["type"] == "FAILED", run["state"]

    deadline = time.monotonic() + 90
    while not (hits := [t for t in inbox_texts(embedded_lab) if run["name"] in t and "failed" in t]):
        assert time.monotonic() < deadline, f"no failure notification for {run['name']}: {inbox_texts(embedded_lab)}"
        time.sleep(1)
    assert "notifications" in hits[0]
