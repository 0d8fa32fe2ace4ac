"""The embedded lab (no Docker): real Prefect server, setup, worker, Dask scheduler and workers
started by `./lab up` as local processes, and stopped by `./lab down` without leaving any behind."""

from __future__ import annotations

import json
import time

import pytest

pytestmark = pytest.mark.stack


def test_up_runs_the_first_flow_and_prints_the_urls(embedded_lab):
    out = embedded_lab.up_output
    assert "First flow COMPLETED" in out, out
    assert embedded_lab.ui_url in out and "Dask dashboard" in out, out


def test_deployment_run_completes_on_the_dask_workers(embedded_lab):
    embedded_lab.assert_first_flow_runs_on_dask(items=6)


def test_status_reports_every_service_healthy(embedded_lab):
    result = embedded_lab.cli("status")
    for service in ("prefect-server", "dask-scheduler", "dask-worker-1", "dask-worker-2", "prefect-worker"):
        assert f"{service}" in result.stdout and "UNHEALTHY" not in result.stdout, result.stdout


def test_up_twice_starts_no_second_copy(embedded_lab):
    def service_pids() -> dict[str, int]:
        return {s["name"]: s["pid"] for s in json.loads(embedded_lab.cli("status", "--json").stdout)}

    before = service_pids()
    result = embedded_lab.cli("up", "--no-first-flow")
    assert "already running" in result.stdout, result.stdout
    assert service_pids() == before, "a second `up` must keep the running services, not start copies"


def test_down_leaves_no_process_up_keeps_history_and_reset_wipes_it(fresh_embedded_lab):
    lab = fresh_embedded_lab
    lab.cli("up")
    first_runs = {run["id"] for run in lab.flow_runs()}
    assert first_runs, "the first flow's run should be in the history"

    # A crashed worker that the watchdog is about to restart: down stops the watchdog first, so
    # nothing comes back after it (a restart would be due a second after the kill).
    lab.cli("chaos", "kill", "dask-worker-2")
    lab.cli("down")
    assert lab.processes() == [], "down must leave no process of the lab"
    time.sleep(2)
    assert lab.processes() == [], "nothing may start again after down"

    lab.cli("up", "--no-first-flow")
    assert first_runs <= {run["id"] for run in lab.flow_runs()}, "the run history must survive down/up"

    lab.cli("reset", "--yes")
    assert lab.processes() == []
    lab.cli("up", "--no-first-flow")
    # The fresh server schedules new runs at once (section 4's active schedule): none is from before.
    assert not first_runs & {run["id"] for run in lab.flow_runs()}, "reset must wipe the run history"
    assert lab.deployment("hello-lab/hello-lab")["name"] == "hello-lab", "up after reset deploys again"
    # Both fresh starts began from the migrated template database (workshop_lab/stack/prefect_database.py);
    # the start in between found its database and kept it.
    server_log = (lab.home / "logs" / "prefect-server.log").read_text()
    assert server_log.count("started Prefect's database from") == 2, server_log[-3000:]


def test_setup_deployed_every_module_of_prefect_yaml(embedded_lab):
    import yaml

    from workshop_lab.stack.settings import FLOWS_DIR

    wanted = {d["name"] for d in yaml.safe_load((FLOWS_DIR / "prefect.yaml").read_text())["deployments"]}
    deployed = {d["name"] for d in embedded_lab.post("/deployments/filter", {"limit": 200})}
    assert wanted <= deployed, f"not deployed on the embedded lab: {sorted(wanted - deployed)}"
