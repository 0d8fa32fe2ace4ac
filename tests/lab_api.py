"""A small client of a running lab, as the UI and a learner's scripts see it: Prefect's REST API
and the Dask scheduler's JSON endpoints, over plain HTTP. Tests assert on what these return."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


class LabHandle:
    def __init__(self, ports: dict[str, str]):
        """`ports`: the lab's port settings (PREFECT_PORT, ...), as the learner's machine reaches them."""
        self.api_url = f"http://127.0.0.1:{ports['PREFECT_PORT']}/api"
        self.ui_url = f"http://localhost:{ports['PREFECT_PORT']}"
        self.scheduler_address = f"tcp://127.0.0.1:{ports['DASK_SCHEDULER_PORT']}"
        self.upstream_url = f"http://127.0.0.1:{ports['UPSTREAM_PORT']}"
        self.inbox_url = f"http://127.0.0.1:{ports['INBOX_PORT']}"
        self.http = httpx.Client(base_url=self.api_url, timeout=30)

    def request(self, method: str, path: str, body: dict | None = None) -> httpx.Response:
        """One API call. Like Prefect's own client, retry a 503: the server's answer to a retryable
        database error (SQLite busy on a loaded laptop), which nothing has committed."""
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

    # --- Prefect -------------------------------------------------------------------------------
    def deployment(self, name: str) -> dict:
        return self.get(f"/deployments/name/{name}")

    def start_run(self, deployment: str, parameters: dict | None = None) -> dict:
        deployment_id = self.deployment(deployment)["id"]
        return self.post(f"/deployments/{deployment_id}/create_flow_run", {"parameters": parameters or {}})

    def wait_for_run(self, flow_run_id: str, timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            run = self.get(f"/flow_runs/{flow_run_id}")
            if run["state"] and run["state"]["type"] in TERMINAL:
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"flow run {flow_run_id} still {run['state']['type']} after {timeout:.0f}s")
            time.sleep(1)

    def run_deployment(self, deployment: str, parameters: dict | None = None, timeout: float = 300) -> dict:
        return self.wait_for_run(self.start_run(deployment, parameters)["id"], timeout)

    def flow_runs(self) -> list[dict]:
        runs, offset = [], 0
        while True:  # the API rejects limits above 200: page with offset
            page = self.post("/flow_runs/filter", {"limit": 200, "offset": offset, "sort": "EXPECTED_START_TIME_DESC"})
            runs += page
            if len(page) < 200:
                return runs
            offset += 200

    def run_logs(self, flow_run_id: str) -> str:
        """A flow run's log lines (the first 200), for assertion messages."""
        logs = self.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200, "sort": "TIMESTAMP_ASC"})
        return "\n".join(entry["message"] for entry in logs)

    def task_runs(self, flow_run_id: str, settle: float = 60) -> list[dict]:
        """The task runs of a finished flow run, as the UI shows them once they have caught up.

        Prefect 3 records task runs from events, which the flow's process sends in the background and
        flushes as it exits, after it has set the flow run's final state through the API: right
        after a flow run finishes, its last task run can still read RUNNING (CI saw `notify`
        RUNNING in a COMPLETED elt run). So read until every task run is final and two reads a
        second apart agree, for at most `settle` seconds; past that, return what is there and let
        the test's assertion show it."""
        deadline = time.monotonic() + settle
        previous = None
        while True:
            runs = self.post("/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}, "limit": 200})
            current = sorted((run["id"], run["state"]["type"] if run["state"] else None) for run in runs)
            settled = current == previous and all(state in TERMINAL for _, state in current)
            if settled or time.monotonic() > deadline:
                return runs
            previous = current
            time.sleep(1)

    def table_artifact(self, flow_run_id: str, key: str) -> list[dict]:
        artifacts = self.post("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}, "key": {"any_": [key]}}})
        assert artifacts, f"flow run {flow_run_id} created no artifact {key!r}"
        data = artifacts[0]["data"]
        return json.loads(data) if isinstance(data, str) else data

    # --- Dask ----------------------------------------------------------------------------------
    def dask_workers(self) -> list[str]:
        """The worker addresses the Dask scheduler knows, asked with a real Dask client."""
        from distributed import Client

        with Client(self.scheduler_address, timeout=30) as client:
            return sorted(client.scheduler_info(n_workers=-1)["workers"])

    # --- the promise every lab keeps -----------------------------------------------------------
    def assert_first_flow_runs_on_dask(self, items: int = 6) -> list[dict]:
        """Run hello-lab through the worker: it COMPLETES, and every task ran on one of the lab's
        Dask workers (each task records the address of the Dask worker that ran it)."""
        run = self.run_deployment("hello-lab/hello-lab", {"items": items})
        assert run["state"]["type"] == "COMPLETED", run["state"]

        rows = self.table_artifact(run["id"], "hello-lab-workers")
        assert sorted(row["square"] for row in rows) == [i * i for i in range(items)]
        lab_workers = self.dask_workers()
        assert len(lab_workers) == 2, lab_workers
        assert {row["dask_worker"] for row in rows} <= set(lab_workers), (rows, lab_workers)

        task_states = [t["state"]["type"] for t in self.task_runs(run["id"])]
        assert task_states == ["COMPLETED"] * items, task_states
        return rows

