"""Module 13, the real pipeline: the `elt` deployment on the embedded lab runs source-faker into the
raw tables, `dbt build` with every dbt node a task run, quality gates, artifacts
and a notification. The tests read the warehouse themselves: raw = staged + quarantined per stream,
every injected fault quarantined with its reason; a second run is incremental, and bad records asked
of it (the guide's `inject_bad_records=10`) still reach the quarantine; two writers at once both
succeed, and a held lock makes a writer wait with a clear message."""

from __future__ import annotations

import threading
import time

import duckdb
import httpx
import pytest

from workshop_lab.flow_tools.warehouse import writer_lock
from workshop_lab.stack.settings import LabConfig

pytestmark = pytest.mark.stack

DEPLOYMENT = "elt/elt"
RECORDS = 1000
INJECTED = 5
INJECTED_ON_SECOND_RUN = 10  # the guide's step: `./lab run elt/elt --param inject_bad_records=10` after a first run
STREAMS = ("users", "products", "purchases")


def paths(lab) -> tuple[str, str]:
    warehouse = LabConfig.load(lab.env).warehouse_path
    return str(warehouse), str(warehouse.with_name("airbyte_raw.duckdb"))


def read_warehouse(lab) -> dict:
    """Rows per layer and the quarantine, straight from the files (read-only, under the writer lock)."""
    warehouse, raw = paths(lab)
    with writer_lock(warehouse, purpose="tests: read"), duckdb.connect(warehouse, read_only=True) as con:
        con.execute(f"attach '{raw}' as airbyte_raw (read_only)")
        layers = {
            s: {
                "raw": con.execute(f"select count(*) from airbyte_raw.raw.{s}").fetchone()[0],
                "staged": con.execute(f"select count(*) from staging.stg_{s}").fetchone()[0],
            }
            for s in STREAMS
        }
        quarantine = dict(con.execute("select raw_id, reason from quarantine.quarantined_records").fetchall())
        for s in STREAMS:
            layers[s]["quarantined"] = con.execute(
                "select count(*) from quarantine.quarantined_records where stream = ?", [s]
            ).fetchone()[0]
        injected = con.execute("select stream, raw_id, fault from airbyte_raw.raw._lab_injected_faults").fetchall()
        states = con.execute("select stream_name from airbyte_raw.raw._airbyte_state").fetchall()
        marts = {
            m: con.execute(f"select count(*) from marts.{m}").fetchone()[0]
            for m in ("customers", "daily_revenue", "product_performance")
        }
    return {"layers": layers, "quarantine": quarantine, "injected": injected, "states": states, "marts": marts}


def row_counts(lab, run_id: str) -> dict[str, dict]:
    return {row["layer"]: row for row in lab.table_artifact(run_id, "elt-row-counts")}


def run_logs(lab, run_id: str) -> str:
    return lab.run_logs(run_id)


@pytest.fixture(scope="module")
def first_run(embedded_lab) -> dict:
    run = embedded_lab.run_deployment(DEPLOYMENT, {"records": RECORDS, "inject_bad_records": INJECTED}, timeout=600)
    assert run["state"]["type"] == "COMPLETED", (run["state"], run_logs(embedded_lab, run["id"])[-3000:])
    run["warehouse"] = read_warehouse(embedded_lab)  # as the first run left it (the second run adds faults)
    return run


@pytest.fixture(scope="module")
def second_run(embedded_lab, first_run) -> dict:
    """The guide's second run: incremental (source-faker has nothing new), with inject_bad_records=10."""
    before = read_warehouse(embedded_lab)
    run = embedded_lab.run_deployment(
        DEPLOYMENT, {"records": RECORDS, "inject_bad_records": INJECTED_ON_SECOND_RUN}, timeout=600
    )
    assert run["state"]["type"] == "COMPLETED", (run["state"], run_logs(embedded_lab, run["id"])[-3000:])
    return {**run, "before": before, "after": read_warehouse(embedded_lab)}


def test_every_dbt_node_is_a_task_run_and_they_all_completed(embedded_lab, first_run):
    task_runs = embedded_lab.task_runs(first_run["id"])
    states = {run["name"]: run["state_type"] for run in task_runs}
    dbt_nodes = {name: state for name, state in states.items() if name.startswith(("model ", "test ", "data_test "))}
    for model in (
        "stg_users",
        "stg_products",
        "stg_purchases",
        "quarantined_records",
        "customers",
        "daily_revenue",
        "product_performance",
    ):
        assert any(name.startswith(f"model {model}") for name in dbt_nodes), (model, sorted(states))
    assert any("reconcile_raw_staged_quarantined" in name for name in dbt_nodes), sorted(states)
    assert dbt_nodes and set(dbt_nodes.values()) == {"COMPLETED"}, dbt_nodes
    for step in ("extract_load", "warehouse_counts", "quality_gates", "publish", "notify"):
        assert any(name.startswith(step) and state == "COMPLETED" for name, state in states.items()), (step, states)


def test_nothing_is_lost_raw_equals_staged_plus_quarantined(embedded_lab, first_run):
    data = first_run["warehouse"]
    counts = row_counts(embedded_lab, first_run["id"])
    for stream in STREAMS:
        layer = data["layers"][stream]
        assert layer["raw"] == layer["staged"] + layer["quarantined"], (stream, layer)
        # The source's own count of what it emitted this run is what reached the raw table.
        assert counts["source (emitted this run)"][stream] == layer["raw"], (stream, counts, layer)
    assert data["layers"]["users"]["raw"] == RECORDS and data["layers"]["products"]["raw"] == 100
    assert all(rows > 0 for rows in data["marts"].values()), data["marts"]


def test_every_injected_fault_is_quarantined_with_its_reason(embedded_lab, first_run):
    data = first_run["warehouse"]
    assert len(data["injected"]) == INJECTED, data["injected"]
    for stream, raw_id, fault in data["injected"]:
        assert data["quarantine"].get(raw_id) == fault, (stream, raw_id, fault, data["quarantine"].get(raw_id))
    # A purchase of a quarantined user is quarantined too (never attributed to nobody).
    assert "unknown user_id" in data["quarantine"].values()


def test_artifacts_and_the_inbox_message(embedded_lab, first_run):
    counts = row_counts(embedded_lab, first_run["id"])
    assert set(counts) == {
        "source (emitted this run)",
        "raw (airbyte_raw.raw)",
        "staging",
        "quarantine",
        "bad records injected (this run)",
    }
    summaries = embedded_lab.post(
        "/artifacts/filter",
        {"artifacts": {"flow_run_id": {"any_": [first_run["id"]]}, "key": {"any_": ["elt-summary"]}}},
    )
    assert summaries and "Customers who bought" in summaries[0]["data"], summaries
    messages = httpx.get(f"{embedded_lab.inbox_url}/messages", timeout=10).json()
    assert any(m["text"].startswith("# ELT run:") for m in messages), [m["text"][:80] for m in messages]


def test_a_second_run_is_incremental(embedded_lab, second_run):
    before, after = second_run["before"], second_run["after"]
    assert sorted(s for (s,) in before["states"]) == sorted(STREAMS), "the connector's state was saved per stream"
    emitted = row_counts(embedded_lab, second_run["id"])["source (emitted this run)"]
    # source-faker with saved state (always_updated: false) has nothing new: nothing is re-read.
    assert all(emitted[s] == 0 for s in STREAMS), emitted
    # The bad records asked for are new versions of records already there: no raw row is added.
    assert {s: after["layers"][s]["raw"] for s in STREAMS} == {s: before["layers"][s]["raw"] for s in STREAMS}


def test_bad_records_asked_of_an_incremental_run_reach_the_quarantine_and_it_says_how(embedded_lab, second_run):
    before, after = second_run["before"], second_run["after"]
    new_faults = sorted(set(after["injected"]) - set(before["injected"]))
    assert len(new_faults) == INJECTED_ON_SECOND_RUN, new_faults
    for stream, raw_id, fault in new_faults:
        assert after["quarantine"].get(raw_id) == fault, (stream, raw_id, fault, after["quarantine"].get(raw_id))
    for stream in STREAMS:
        layer = after["layers"][stream]
        assert layer["raw"] == layer["staged"] + layer["quarantined"], (stream, layer)
    # Users have no knock-on faults: each bad user is one more quarantined row and one fewer staged.
    bad_users = sum(stream == "users" for stream, _, _ in new_faults)
    assert after["layers"]["users"]["quarantined"] == before["layers"]["users"]["quarantined"] + bad_users
    assert after["layers"]["users"]["staged"] == before["layers"]["users"]["staged"] - bad_users
    # The run's artifacts say what happened: how many per stream, and that they are re-sent earlier records.
    injected = row_counts(embedded_lab, second_run["id"])["bad records injected (this run)"]
    assert {s: injected[s] for s in STREAMS} == {s: sum(f[0] == s for f in new_faults) for s in STREAMS}, injected
    summary = embedded_lab.post(
        "/artifacts/filter",
        {"artifacts": {"flow_run_id": {"any_": [second_run["id"]]}, "key": {"any_": ["elt-summary"]}}},
    )[0]["data"]
    assert (
        "this run loaded nothing new" in summary
        and f"{INJECTED_ON_SECOND_RUN} records loaded earlier were re-sent" in summary
    ), summary


def test_bad_parameters_are_refused_before_any_work(embedded_lab):
    deployment_id = embedded_lab.deployment(DEPLOYMENT)["id"]
    for bad in ({"records": 10}, {"streams": ["customers"]}, {"target": "bigquery"}, {"inject_bad_records": -1}):
        response = embedded_lab.request("POST", f"/deployments/{deployment_id}/create_flow_run", {"parameters": bad})
        assert response.status_code in (409, 422), (bad, response.status_code, response.text)


def test_a_held_lock_makes_the_other_writer_wait_and_say_why(embedded_lab, first_run):
    warehouse, _ = paths(embedded_lab)
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with writer_lock(warehouse, purpose="tests: a long write"):
            holding.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        run_id = embedded_lab.start_run("workflow-analytics/workflow-analytics")["id"]
        deadline = time.monotonic() + 120
        while "tests: a long write" not in run_logs(embedded_lab, run_id):
            assert time.monotonic() < deadline, run_logs(embedded_lab, run_id)[-2000:]
            time.sleep(1)
        assert embedded_lab.get(f"/flow_runs/{run_id}")["state"]["type"] == "RUNNING"  # waiting, not failed
    finally:
        release.set()
        holder.join()
    run = embedded_lab.wait_for_run(run_id, timeout=120)
    assert run["state"]["type"] == "COMPLETED", run["state"]
    assert "waiting for it" in run_logs(embedded_lab, run_id)


def test_two_writers_at_once_both_succeed(embedded_lab, first_run):
    elt_id = embedded_lab.start_run(DEPLOYMENT, {"records": RECORDS, "full_refresh": True})["id"]
    analytics_id = embedded_lab.start_run("workflow-analytics/workflow-analytics")["id"]
    elt, analytics = embedded_lab.wait_for_run(elt_id, 600), embedded_lab.wait_for_run(analytics_id, 600)
    assert elt["state"]["type"] == "COMPLETED", (elt["state"], run_logs(embedded_lab, elt_id)[-2000:])
    assert analytics["state"]["type"] == "COMPLETED", (analytics["state"], run_logs(embedded_lab, analytics_id)[-2000:])
    data = read_warehouse(embedded_lab)  # the file opens, and both flows' tables are whole
    for stream in STREAMS:
        layer = data["layers"][stream]
        assert layer["raw"] == layer["staged"] + layer["quarantined"], (stream, layer)
    warehouse, _ = paths(embedded_lab)
    with duckdb.connect(warehouse, read_only=True) as con:
        assert con.execute("select count(*) from prefect_history.flow_runs").fetchone()[0] > 0
