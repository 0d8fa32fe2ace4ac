"""Module 10, subflows and the flow of flows: the parent's subflows and the deployment runs it starts
with run_deployment are all linked to it in the API (each child's parent_task_run_id is a task run
of the parent flow run), the parent waited for its deployed children, and read their results."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.stack

PARENT = "flow-of-flows/flow-of-flows"


def test_subflows_and_deployment_children_link_back_to_the_parent(embedded_lab):
    run = embedded_lab.run_deployment(PARENT, {"cities": ["Lima", "Oslo"], "hello_items": 2}, timeout=480)
    assert run["state"]["type"] == "COMPLETED", run["state"]

    parent_task_runs = {t["id"]: t for t in embedded_lab.task_runs(run["id"])}
    children = embedded_lab.post(
        "/flow_runs/filter", {"flow_runs": {"parent_task_run_id": {"any_": sorted(parent_task_runs)}}, "limit": 200}
    )
    flow_names = {c["flow_id"]: embedded_lab.get(f"/flows/{c['flow_id']}")["name"] for c in children}
    by_flow: dict[str, list[dict]] = {}
    for child in children:
        by_flow.setdefault(flow_names[child["flow_id"]], []).append(child)
    assert sorted((name, len(runs)) for name, runs in by_flow.items()) == [
        ("city-weather", 2),
        ("extract-orders", 1),
        ("hello-lab", 1),
        ("summarize-orders", 1),
    ], by_flow

    # Every child points at a task run inside *this* parent flow run, and finished before the parent did.
    for child in children:
        link = parent_task_runs[child["parent_task_run_id"]]
        assert link["flow_run_id"] == run["id"]
        assert child["state"]["type"] == "COMPLETED", (child["name"], child["state"])

    # Subflows ran in the parent's process: no deployment. The others were started from deployments.
    assert all(c["deployment_id"] is None for c in by_flow["extract-orders"] + by_flow["summarize-orders"])
    assert {c["deployment_id"] for c in by_flow["city-weather"]} == {
        embedded_lab.deployment("city-weather/city-weather")["id"]
    }
    assert by_flow["hello-lab"][0]["deployment_id"] == embedded_lab.deployment("hello-lab/hello-lab")["id"]
    assert sorted(c["parameters"]["city"] for c in by_flow["city-weather"]) == ["Lima", "Oslo"]

    # A run_deployment child's link is a task run that itself records which task started it.
    starters = {t["id"] for t in parent_task_runs.values() if t["name"].startswith("start-")}
    for child in by_flow["city-weather"] + by_flow["hello-lab"]:
        parents = parent_task_runs[child["parent_task_run_id"]]["task_inputs"].get("__parents__", [])
        assert {p["id"] for p in parents} & starters, parents

    # The parent waited for the deployed children and read their persisted results.
    rows = embedded_lab.table_artifact(run["id"], "flow-of-flows-children")
    assert [r["state"] for r in rows] == ["COMPLETED"] * 3, rows
    weather = {r["child_run"]: r["result"] for r in rows if r["deployment"] == "city-weather/city-weather"}
    assert sorted(weather) == sorted(c["name"] for c in by_flow["city-weather"])
    assert all("'mean_c'" in result for result in weather.values()), weather
