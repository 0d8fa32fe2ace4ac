"""A small client of a running lab, as the UI and a learner's scripts see it: Prefect's REST API
and the Dask scheduler's JSON endpoints, over plain HTTP. Tests assert on what these return."""

from __future__ import annotations

import json
import time

from workshop_lab.stack.prefect_api import TERMINAL, PrefectApi


class LabHandle(PrefectApi):
    """A lab the tests drive: its Prefect API (request/get/post/task_runs from PrefectApi), its
    Dask scheduler and its course services, at the addresses the learner's machine reaches."""

    def __init__(self, ports: dict[str, str]):
        """`ports`: the lab's port settings (PREFECT_PORT, ...), as the learner's machine reaches them."""
        super().__init__(f"http://127.0.0.1:{ports['PREFECT_PORT']}/api")
        self.ui_url = f"http://localhost:{ports['PREFECT_PORT']}"
        self.scheduler_address = f"tcp://127.0.0.1:{ports['DASK_SCHEDULER_PORT']}"
        self.upstream_url = f"http://127.0.0.1:{ports['UPSTREAM_PORT']}"
        self.inbox_url = f"http://127.0.0.1:{ports['INBOX_PORT']}"

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
        logs = self.post(
            "/logs/filter", {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200, "sort": "TIMESTAMP_ASC"}
        )
        return "\n".join(entry["message"] for entry in logs)

    def table_artifact(self, flow_run_id: str, key: str) -> list[dict]:
        artifacts = self.post(
            "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}, "key": {"any_": [key]}}}
        )
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
