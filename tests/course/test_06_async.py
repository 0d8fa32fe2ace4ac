"""Module 06 (async) on the real embedded lab: the async-weather deployment, run by the lab's
worker, COMPLETES, and its concurrent task runs really ran at the same time."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

pytestmark = pytest.mark.stack


def when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_async_tasks_gathered_together_overlap_in_time(embedded_lab) -> None:
    with httpx.Client(base_url=embedded_lab.upstream_url, timeout=30) as upstream:
        upstream.post("/chaos/reset").raise_for_status()
        before = upstream.get("/chaos").json()["latency_ms"]
        run = embedded_lab.run_deployment("async-weather/async-weather", {"latency_ms": 300})
        after = upstream.get("/chaos").json()["latency_ms"]
    assert run["state"]["type"] == "COMPLETED", run["state"]

    task_runs = embedded_lab.task_runs(run["id"])
    assert all(t["state"]["type"] == "COMPLETED" for t in task_runs), [
        (t["name"], t["state"]["type"]) for t in task_runs
    ]
    concurrent = [t for t in task_runs if t["name"].startswith("concurrent-")]
    sequential = [t for t in task_runs if t["name"].startswith("sequential-")]
    assert len(concurrent) == len(sequential) == 7, [t["name"] for t in task_runs]

    # The teaching point: gathered task runs overlap (the last one starts before the first one ends)...
    first_end = min(when(t["end_time"]) for t in concurrent)
    last_start = max(when(t["start_time"]) for t in concurrent)
    assert last_start < first_end, (last_start, first_end)
    # ...while the ones awaited one by one never do.
    ordered = sorted(sequential, key=lambda t: when(t["start_time"]))
    for earlier, later in zip(ordered, ordered[1:], strict=False):
        assert when(earlier["end_time"]) <= when(later["start_time"]), (earlier["name"], later["name"])

    # The flow slowed the upstream only for its own run: the latency is back to what it was.
    assert after == before, (before, after)
