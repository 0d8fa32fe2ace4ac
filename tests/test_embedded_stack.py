"""The embedded lab (no Docker): real Prefect server, setup, worker, Dask scheduler and workers
started by `./lab up` as local processes, and stopped by `./lab down` without leaving any behind."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.stack


def test_up_runs_the_first_flow_and_prints_the_urls(embedded_lab):
    out = embedded_lab.up_output
    assert "First flow COMPLETED" in out, out
    assert embedded_lab.ui_url in out and "Dask dashboard" in out, out


def test_deployment_run_completes_on_the_dask_workers(embedded_lab):
    run = embedded_lab.run_deployment("hello-lab/hello-lab", {"items": 6})
    assert run["state"]["type"] == "COMPLETED", run["state"]

    rows = embedded_lab.table_artifact(run["id"], "hello-lab-workers")
    assert sorted(row["square"] for row in rows) == [i * i for i in range(6)]
    lab_workers = embedded_lab.dask_workers()
    assert len(lab_workers) == 2, lab_workers
    assert {row["dask_worker"] for row in rows} <= set(lab_workers), (rows, lab_workers)

    task_states = [t["state"]["type"] for t in embedded_lab.task_runs(run["id"])]
    assert task_states == ["COMPLETED"] * 6, task_states


def test_status_reports_every_service_healthy(embedded_lab):
    result = embedded_lab.cli("status")
    for service in ("prefect-server", "dask-scheduler", "dask-worker", "prefect-worker"):
        assert f"{service}" in result.stdout and "UNHEALTHY" not in result.stdout, result.stdout


def test_up_twice_starts_no_second_copy(embedded_lab):
    before = sorted(embedded_lab.processes())
    result = embedded_lab.cli("up", "--no-first-flow")
    assert "already running" in result.stdout, result.stdout
    assert sorted(embedded_lab.processes()) == before


def test_down_leaves_no_process_up_keeps_history_and_reset_wipes_it(fresh_embedded_lab):
    lab = fresh_embedded_lab
    lab.cli("up")
    first_runs = {run["id"] for run in lab.flow_runs()}
    assert first_runs, "the first flow's run should be in the history"

    lab.cli("down")
    assert lab.processes() == [], "down must leave no process of the lab"

    lab.cli("up", "--no-first-flow")
    assert first_runs <= {run["id"] for run in lab.flow_runs()}, "the run history must survive down/up"

    lab.cli("reset", "--yes")
    assert lab.processes() == []
    lab.cli("up", "--no-first-flow")
    assert lab.flow_runs() == [], "reset must wipe the run history"
    assert lab.deployment("hello-lab/hello-lab")["name"] == "hello-lab", "up after reset deploys again"
