"""A small reader of a running lab's Prefect REST API, over plain HTTP, as the UI sees it.

`./lab check` reads what a learner's runs did through it, and the tests' `LabHandle` builds on it.
Two things every reader of a lab's runs needs, kept here once:
- a 503 is retried, like Prefect's own client does: it is the server's answer to a retryable
  database error (SQLite busy on a loaded laptop), which nothing has committed;
- a finished flow run's task runs are read once they have caught up. Prefect 3 records task runs
  from events, which the flow's process sends in the background and flushes as it exits, after
  it has set the flow run's final state through the API: right after a flow run finishes, its
  last task run can still read RUNNING (CI once saw elt's `notify` RUNNING in a COMPLETED run).
"""

from __future__ import annotations

import time
from typing import Any

import httpx

TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


class PrefectApi:
    def __init__(self, api_url: str):
        self.api_url = api_url
        self.http = httpx.Client(base_url=api_url, timeout=30)

    def request(self, method: str, path: str, body: dict | None = None) -> httpx.Response:
        """One API call, a 503 retried with back-off; the response as it came."""
        for attempt in range(6):
            response = self.http.request(method, path, json=body)
            if response.status_code != 503:
                break
            time.sleep(0.5 * 2**attempt)
        return response

    def post(self, path: str, body: dict | None = None) -> Any:
        response = self.request("POST", path, body or {})
        response.raise_for_status()
        return response.json() if response.content else None

    def get(self, path: str) -> Any:
        response = self.request("GET", path)
        response.raise_for_status()
        return response.json()

    def task_runs(self, flow_run_id: str, settle: float = 60, poll: float = 1.0) -> list[dict]:
        """The task runs of a finished flow run once they have caught up: read until every one is
        final and two reads `poll` seconds apart agree, for at most `settle` seconds; past that,
        what is there (the caller's check then shows it)."""
        deadline = time.monotonic() + settle
        previous = None
        while True:
            runs = self.post("/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}, "limit": 200})
            current = sorted((run["id"], run["state"]["type"] if run["state"] else None) for run in runs)
            settled = current == previous and all(state in TERMINAL for _, state in current)
            if settled or time.monotonic() > deadline:
                return runs
            previous = current
            time.sleep(poll)
