"""Module 02, retries: a task retries a 503 with backoff and completes (its state history shows each
retry), and does not retry a 400: the run fails after a single attempt."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.stack

DEPLOYMENT = "retries/retries"


def state_history(embedded_lab, task_run_id: str) -> list[str]:
    """The names of every state a task run went through, oldest first."""
    states = embedded_lab.get(f"/task_run_states/?task_run_id={task_run_id}")
    return [s["name"] for s in sorted(states, key=lambda s: s["timestamp"])]


def test_a_503_is_retried_with_backoff_until_the_task_completes(embedded_lab, upstream):
    upstream.patch("/chaos", json={"fail_next": 2}).raise_for_status()
    run = embedded_lab.run_deployment(DEPLOYMENT, {"pages": 2, "page_size": 100})
    assert run["state"]["type"] == "COMPLETED", run["state"]

    task_runs = embedded_lab.task_runs(run["id"])
    retried = [t for t in task_runs if t["run_count"] > 1]
    assert len(retried) == 1, [(t["name"], t["run_count"]) for t in task_runs]
    history = state_history(embedded_lab, retried[0]["id"])
    # Two failed attempts, each followed by a wait and a retry, then success on the third attempt.
    assert history == ["Pending", "Running", "AwaitingRetry", "Retrying", "AwaitingRetry", "Retrying", "Completed"], (
        history
    )
    assert retried[0]["run_count"] == 3
    assert upstream.get("/stats").json()["failures"] == 2


def test_a_400_is_not_retried(embedded_lab, upstream):
    run = embedded_lab.run_deployment(DEPLOYMENT, {"pages": 1, "page_size": 600})
    assert run["state"]["type"] == "FAILED", run["state"]

    [task_run] = embedded_lab.task_runs(run["id"])
    assert task_run["state"]["type"] == "FAILED"
    assert task_run["run_count"] == 1
    history = state_history(embedded_lab, task_run["id"])
    assert "AwaitingRetry" not in history and "Retrying" not in history, history
    assert history[-1] == "Failed", history
    assert upstream.get("/stats").json()["requests"] == 1, "the upstream should have seen the bad request once"
