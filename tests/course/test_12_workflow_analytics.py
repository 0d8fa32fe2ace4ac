"""Module 12, analytics on workflow history: the analytics flow pages through the API's whole run
history into the DuckDB warehouse; its per-flow table artifact reconciles with the API's own counts
of runs that started (between a count taken before the run and one taken after, since runs keep
being added), and the warehouse tables exist and agree with the artifact: the snapshot holds the
upcoming runs too (hello-schedule's), the statistics leave them out."""

from __future__ import annotations

from collections import Counter

import duckdb
import pytest

from workshop_lab.stack.settings import LabConfig

pytestmark = pytest.mark.stack

DEPLOYMENT = "workflow-analytics/workflow-analytics"


def not_started(run: dict) -> bool:
    """Upcoming: Scheduled or Pending and never started (a run awaiting a retry has started)."""
    return run["start_time"] is None and run["state_type"] in ("SCHEDULED", "PENDING")


def runs_per_flow(embedded_lab, state_type: str | None = None) -> Counter[str]:
    """Flow runs that started (or ended) per flow name, as the API counts them now (all states, or one state type)."""
    names: dict[str, str] = {}
    counts: Counter[str] = Counter()
    for run in embedded_lab.flow_runs():
        if not_started(run) or (state_type and run["state_type"] != state_type):
            continue
        if run["flow_id"] not in names:
            names[run["flow_id"]] = embedded_lab.get(f"/flows/{run['flow_id']}")["name"]
        counts[names[run["flow_id"]]] += 1
    return counts


def test_the_artifact_reconciles_with_the_api_and_the_warehouse_has_the_history(embedded_lab):
    # Some history beyond what the session already made: two more hello-lab runs.
    for _ in range(2):
        assert embedded_lab.run_deployment("hello-lab/hello-lab", {"items": 2})["state"]["type"] == "COMPLETED"

    before, completed_before = runs_per_flow(embedded_lab), runs_per_flow(embedded_lab, "COMPLETED")
    # Pages of a third of the history: the flow's offset loop must turn at least three times.
    page_size = max(1, sum(before.values()) // 3)
    run = embedded_lab.run_deployment(DEPLOYMENT, {"page_size": min(page_size, 200)})
    assert run["state"]["type"] == "COMPLETED", run["state"]
    after, completed_after = runs_per_flow(embedded_lab), runs_per_flow(embedded_lab, "COMPLETED")

    rows = {row["flow_name"]: row for row in embedded_lab.table_artifact(run["id"], "workflow-analytics")}
    assert set(before) <= set(rows) <= set(after) | {"workflow-analytics"}, (sorted(rows), sorted(after))
    for name, row in rows.items():
        # Runs are only ever added: the snapshot sits between the two counts.
        assert before[name] <= row["runs"] <= after[name], (name, before[name], row["runs"], after[name])
        assert completed_before[name] <= row["completed"] <= completed_after[name], (name, row)
        assert row["completed"] + row["failed"] <= row["finished"] <= row["runs"], row
        if row["completed"]:
            assert 0 < row["success_rate"] <= 1 and row["p50_seconds"] <= row["p90_seconds"], row
    assert rows["hello-lab"]["completed"] >= 3  # the session's first run and the two above

    # The warehouse: read it back (read-only, closed at once: the lab's flows share this file).
    path = LabConfig.load(embedded_lab.env).warehouse_path
    with duckdb.connect(str(path), read_only=True) as con:
        stats = dict(con.execute("select flow_name, runs from prefect_history.flow_stats").fetchall())
        flow_runs = con.execute("select count(*), count(distinct id) from prefect_history.flow_runs").fetchone()
        snapshot = con.execute("select flow_name, state_type, start_time from prefect_history.flow_runs").fetchall()
        task_runs = con.execute("select count(*) from prefect_history.task_runs").fetchone()[0]
    assert stats == {name: row["runs"] for name, row in rows.items()}
    assert flow_runs[0] == flow_runs[1], "each flow run once, even though paging may see one twice"
    # hello-schedule's schedule is active all session: the scheduler always has its next runs waiting.
    upcoming = Counter(
        name
        for name, state_type, start_time in snapshot
        if not_started({"state_type": state_type, "start_time": start_time})
    )
    assert upcoming["hello-schedule"] > 0, f"the snapshot lacks the upcoming runs: {sorted(snapshot)[:20]}"
    started = Counter(
        name
        for name, state_type, start_time in snapshot
        if not not_started({"state_type": state_type, "start_time": start_time})
    )
    assert stats == dict(started), ("the statistics count exactly the runs that started", stats, upcoming)
    assert flow_runs[0] == sum(stats.values()) + sum(upcoming.values())
    assert task_runs > 0
