"""Module 04, schedules: the server's scheduler creates runs for the one active schedule
(hello-schedule, every 60 s) and the worker completes them with nobody asking, keeping only a few
runs ahead (not Prefect's default hour of them); the schedules shipped paused (orders-digest) are
inactive in the API and have created no runs at all."""

from __future__ import annotations

import time

import pytest

from workshop_lab.stack.services import SCHEDULER_LOOKAHEAD_ENV

pytestmark = pytest.mark.stack

ACTIVE = "hello-schedule/hello-schedule"
PAUSED = "orders-digest/orders-digest"
# The first run of a 60 s interval is due within a minute of deploying; the worker polls every 2 s.
SCHEDULE_WAIT_SECONDS = 150
# The most runs the lab's scheduler creates ahead of time (Prefect's default would be 60 here).
MAX_RUNS_AHEAD = int(SCHEDULER_LOOKAHEAD_ENV["PREFECT_SERVER_SERVICES_SCHEDULER_MAX_RUNS"])


def runs_of(embedded_lab, deployment_id: str) -> list[dict]:
    return embedded_lab.post("/flow_runs/filter", {"deployments": {"id": {"any_": [deployment_id]}}, "limit": 200})


def state_history(embedded_lab, flow_run_id: str) -> list[str]:
    """The names of every state a flow run went through, oldest first."""
    states = embedded_lab.get(f"/flow_run_states/?flow_run_id={flow_run_id}")
    return [s["name"] for s in sorted(states, key=lambda s: s["timestamp"])]


def test_the_scheduler_creates_runs_for_the_active_schedule_and_the_worker_completes_them(embedded_lab):
    deployment = embedded_lab.deployment(ACTIVE)
    [schedule] = deployment["schedules"]
    assert schedule["active"] is True and schedule["schedule"]["interval"] == 60, schedule

    deadline = time.monotonic() + SCHEDULE_WAIT_SECONDS
    while True:
        runs = runs_of(embedded_lab, deployment["id"])
        done = [r for r in runs if r["auto_scheduled"] and r["state"]["type"] == "COMPLETED"]
        if done:
            break
        assert time.monotonic() < deadline, f"no scheduled run completed within {SCHEDULE_WAIT_SECONDS}s: " + str(
            [(r["name"], r["auto_scheduled"], r["state_name"], r["expected_start_time"]) for r in runs]
        )
        time.sleep(2)

    # Nobody asked for this run: the scheduler created it in state Scheduled, the worker ran it.
    run = done[0]
    history = state_history(embedded_lab, run["id"])
    assert history[0] == "Scheduled" and "Running" in history and history[-1] == "Completed", history
    assert run["parameters"] == {} and run["work_pool_name"] == "workshop", run
    # The scheduler works ahead, a little: a few upcoming runs wait for their time, not an hour of
    # them (60 at this interval) flooding the Runs page and the history that module 12 analyses.
    upcoming = [
        r["expected_start_time"]
        for r in runs_of(embedded_lab, deployment["id"])
        if r["auto_scheduled"] and r["state"]["type"] == "SCHEDULED" and r["start_time"] is None
    ]
    assert 1 <= len(upcoming) <= MAX_RUNS_AHEAD, sorted(upcoming)


def test_the_schedules_shipped_paused_are_inactive_and_create_no_runs(embedded_lab):
    deployment = embedded_lab.deployment(PAUSED)
    schedules = deployment["schedules"]
    assert len(schedules) == 2, schedules
    assert all(s["active"] is False for s in schedules), schedules
    crons = {s["schedule"]["cron"]: s for s in schedules}
    assert set(crons) == {"*/5 * * * *", "30 7 * * 1-5"}, crons
    assert crons["30 7 * * 1-5"]["schedule"]["timezone"] == "Europe/Berlin"
    assert crons["30 7 * * 1-5"]["parameters"] == {"pages": 10}, "a schedule can carry its own parameters"

    auto = [r["name"] for r in runs_of(embedded_lab, deployment["id"]) if r["auto_scheduled"]]
    assert auto == [], f"a paused schedule must not create runs: {auto}"


def test_a_scheduled_deployment_still_runs_on_demand(embedded_lab):
    run = embedded_lab.run_deployment(PAUSED, {"pages": 1})
    assert run["state"]["type"] == "COMPLETED", run["state"]
    assert run["auto_scheduled"] is False
