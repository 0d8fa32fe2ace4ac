"""Resources going down, on the real labs: what dies comes back, and no run stays RUNNING.

- A killed Prefect worker takes its flow runs with it (as a dead container does). The lab brings the
  worker back (the embedded watchdog; Docker's `restart: on-failure`), the server marks each run
  CRASHED once its heartbeats stop (setup's automation `crashed-when-heartbeats-stop`), the run of
  a deployment tagged `rerun-on-crash` is queued again and COMPLETES, and every crash is in the inbox.
- The ELT pipeline killed mid-load: the writer lock is free, the warehouse readable, and the re-run
  reconciles its counts exactly (its own quality gates fail the run otherwise).
- A hung flow process (SIGSTOP) is marked CRASHED too; a run of an untagged flow stays CRASHED.
- A Dask worker killed mid-map: Dask re-runs its lost task elsewhere, the flow COMPLETES with the
  right checksums, and the worker is back.
- The Docker lab stopped mid-run and started again: the run does not stay RUNNING.

The labs under test mark a run CRASHED after LAB_CRASHED_AFTER_SECONDS of the test labs' settings
(tests/conftest.py: 45 s, with Prefect's 30 s heartbeat; a documented `./lab deploy` run with a
learner's settings puts back the learner's 75 s). Each bound below is the window the server's
automation has, plus its 5 s evaluation loop and slack for a loaded CI machine.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.test_learner_shell import learner_env_for
from workshop_lab.stack.compose import KILL_EVERY_PROCESS
from workshop_lab.stack.settings import FLOWS_DIR

pytestmark = pytest.mark.stack

BACK_BOUND = 60  # from a kill to the service healthy again
# From a kill to the run's CRASHED: the automation's window, plus the server's 5 s evaluation loop
# and slack for a loaded CI machine.
SLACK_SECONDS = 45


def crash_bound(lab) -> float:
    """The window of the lab's `crashed-when-heartbeats-stop`, as the server has it (a `./lab
    deploy` from a shell with other settings redoes it), plus the slack."""
    from datetime import timedelta

    from pydantic import TypeAdapter

    [automation] = [a for a in lab.post("/automations/filter", {}) if a["name"] == "crashed-when-heartbeats-stop"]
    within = TypeAdapter(timedelta).validate_python(automation["trigger"]["within"])
    return within.total_seconds() + SLACK_SECONDS


PROBES = Path(__file__).resolve().parent / "probes"


def wait_until(what: str, probe: Callable[[], Any], timeout: float, poll: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not after {timeout:.0f}s: {what}")
        time.sleep(poll)


def history(lab, flow_run_id: str) -> list[tuple[str, str, str]]:
    """The run's states in order: (type, name, message)."""
    states = sorted(lab.get(f"/flow_run_states/?flow_run_id={flow_run_id}"), key=lambda s: s["timestamp"])
    return [(s["type"], s["name"], s["message"] or "") for s in states]


def types(lab, flow_run_id: str) -> list[str]:
    return [kind for kind, _, _ in history(lab, flow_run_id)]


def task_running(lab, flow_run_id: str, name_prefix: str) -> bool:
    runs = lab.post("/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}})
    return any(t["name"].startswith(name_prefix) and t["state"]["type"] == "RUNNING" for t in runs)


def completed_again(lab, flow_run_id: str) -> dict | None:
    run = lab.get(f"/flow_runs/{flow_run_id}")
    state = run["state"]["type"]
    assert state not in ("FAILED", "CANCELLED"), (run["state"], history(lab, flow_run_id))
    return run if state == "COMPLETED" else None


def assert_crashed_then_rerun(lab, flow_run_id: str) -> None:
    """RUNNING → CRASHED (no heartbeat) → AwaitingRetry (the rerun automation) → RUNNING → COMPLETED."""
    states = history(lab, flow_run_id)
    names = [f"{kind}/{name}" for kind, name, _ in states]
    crashed = names.index("CRASHED/Crashed")
    assert "RUNNING/Running" in names[:crashed], names
    assert "No heartbeat" in states[crashed][2], states[crashed]
    assert names[crashed + 1] == "SCHEDULED/AwaitingRetry", names
    assert names[crashed + 1 :].count("RUNNING/Running") == 1 and names[-1] == "COMPLETED/Completed", names


def inbox_texts(lab) -> list[str]:
    return [m["text"] for m in httpx.get(f"{lab.inbox_url}/messages", timeout=10).json()]


def embedded_service(lab, name: str) -> dict:
    [state] = [s for s in json.loads(lab.cli("status", "--json", check=False).stdout) if s["name"] == name]
    return state


def load_module_08():
    spec = importlib.util.spec_from_file_location("module_08_dask", FLOWS_DIR / "08_dask.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # the module registers itself with cloudpickle by name
    spec.loader.exec_module(module)
    return module


# --- embedded ------------------------------------------------------------------------------------
def test_a_killed_worker_takes_its_runs_they_crash_and_the_safe_one_runs_again(embedded_lab, tmp_path):
    lab = embedded_lab
    # A run of an untagged flow from the learner's shell, which hangs (SIGSTOP): heartbeats stop.
    with open(tmp_path / "hung_flow.log", "w") as output:
        hung = subprocess.Popen(
            [sys.executable, str(PROBES / "hung_flow.py")],
            env=learner_env_for(lab, tmp_path / "home"),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        # The ELT pipeline (tagged rerun-on-crash), killed while it loads the raw tables.
        elt = lab.start_run("elt/elt", {"full_refresh": True, "records": 2000})
        [hung_run] = wait_until(
            "the hung flow's run is RUNNING",
            lambda: lab.post(
                "/flow_runs/filter",
                {
                    "flows": {"name": {"any_": ["recovery-hung-flow"]}},
                    "flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}},
                },
            ),
            60,
        )
        wait_until(
            "the ELT's extract-load is running", lambda: task_running(lab, elt["id"], "extract_load"), 240, poll=0.5
        )
        os.kill(hung.pid, signal.SIGSTOP)
        killed = lab.cli("chaos", "kill", "prefect-worker")
        killed_at = time.monotonic()
        assert "prefect-worker" in killed.stdout, killed.stdout

        # The worker is back by itself.
        wait_until(
            "prefect-worker healthy again", lambda: embedded_service(lab, "prefect-worker")["healthy"], BACK_BOUND
        )
        worker = embedded_service(lab, "prefect-worker")
        assert worker["restarts"] >= 1 and "SIGKILL" in str(worker["last_exit"]), worker

        # Both runs end CRASHED within the bound of the kill; the ELT run goes again and COMPLETES.
        bound = crash_bound(lab)
        wait_until(
            "the ELT run CRASHED", lambda: "CRASHED" in types(lab, elt["id"]), bound - (time.monotonic() - killed_at)
        )
        wait_until(
            "the hung run CRASHED",
            lambda: "CRASHED" in types(lab, hung_run["id"]),
            max(bound - (time.monotonic() - killed_at), 1),
        )
        run = wait_until("the ELT run COMPLETED again", lambda: completed_again(lab, elt["id"]), 300, poll=2)
        assert_crashed_then_rerun(lab, elt["id"])
        assert run["run_count"] == 2, run["run_count"]
        # Untagged: not queued again.
        assert types(lab, hung_run["id"])[-1] == "CRASHED", history(lab, hung_run["id"])
    finally:
        hung.kill()
        hung.wait()

    # The warehouse: lock free, readable, and the re-run's counts reconcile (raw = staged + quarantined).
    layers = {row["layer"].split(" ")[0]: row for row in lab.table_artifact(elt["id"], "elt-row-counts")}
    for stream in ("users", "products", "purchases"):
        assert int(layers["raw"][stream]) == int(layers["staging"][stream]) + int(layers["quarantine"][stream]) > 0, (
            layers
        )
    users = lab.cli("sql", "select count(*) >= 2000 as all_there from marts.customers")
    assert users.returncode == 0 and "true" in users.stdout, users.stdout + users.stderr

    # Every crash was heard, with its reason.
    texts = inbox_texts(lab)
    for name in (elt["name"], hung_run["name"]):
        assert any(name in t and "crashed" in t and "No heartbeat" in t for t in texts), (name, texts[-5:])


@pytest.fixture(params=["embedded", "compose"])
def lab(request):
    return request.getfixturevalue(f"{request.param}_lab")


CHUNKS = 60  # two batches of about 4 s each: the kill lands while both crunch


def test_a_dask_worker_killed_mid_map_comes_back_and_the_flow_gets_the_right_result(lab):
    docker = hasattr(lab, "compose")
    workers_before = set(lab.dask_workers())
    run = lab.start_run("dask-crunch/dask-crunch", {"chunks": CHUNKS, "batches": 2})
    wait_until(
        "a crunch-batch task run is running", lambda: task_running(lab, run["id"], "crunch-batch"), 120, poll=0.3
    )
    if docker:
        lab.run("exec", "-T", "--index", "1", "dask-worker", "python", "-c", KILL_EVERY_PROCESS, check=False)
    else:
        lab.cli("chaos", "kill", "dask-worker-1")
    killed_at = time.monotonic()

    finished = lab.wait_for_run(run["id"], timeout=180)
    assert finished["state"]["type"] == "COMPLETED", (finished["state"], lab.run_logs(run["id"])[-2000:])
    rows = lab.table_artifact(run["id"], "dask-crunch-workers")
    module_08 = load_module_08()
    expected = sorted(sum(module_08.crunch_chunk(c) for c in batch) % 1_000_003 for batch in module_08.split(CHUNKS, 2))
    assert sorted(row["checksum"] for row in rows) == expected, rows
    assert sum(row["chunks"] for row in rows) == CHUNKS, rows

    # The worker is back: the scheduler counts two again, and the service says it restarted.
    wait_until(
        "two Dask workers again", lambda: len(lab.dask_workers()) == 2, BACK_BOUND - (time.monotonic() - killed_at) + 30
    )
    # The killed worker (its address is gone: the new process listens elsewhere) had a batch running
    # (two batches, two workers, killed while they crunched): another worker redid it.
    [killed] = workers_before - set(lab.dask_workers())
    assert killed not in {row["dask_worker"] for row in rows}, (killed, rows)
    if docker:
        container = lab.run("ps", "-q", "--all", "dask-worker").stdout.split()
        counts = [int(lab_inspect(c, "{{.RestartCount}}")) for c in container]
        assert sum(counts) >= 1, counts
    else:
        state = embedded_service(lab, "dask-worker-1")
        assert state["healthy"] and state["restarts"] >= 1, state


def lab_inspect(container: str, template: str) -> str:
    return subprocess.run(
        ["docker", "inspect", "--format", template, container], capture_output=True, text=True, check=True
    ).stdout.strip()


# --- Docker ----------------------------------------------------------------------------------------
def test_docker_lab_worker_crash_then_stop_and_start_leaves_no_run_running(compose_lab):
    lab = compose_lab
    run = lab.start_run("dask-crunch/dask-crunch", {"chunks": 120, "batches": 2})
    wait_until("dask-crunch is running", lambda: task_running(lab, run["id"], "crunch-batch"), 120, poll=0.5)

    # A crash of the worker's container: Docker's restart policy brings it back, healthy.
    [worker] = lab.run("ps", "-q", "prefect-worker").stdout.split()
    lab.run("exec", "-T", "prefect-worker", "python", "-c", KILL_EVERY_PROCESS, check=False)
    killed_at = time.monotonic()
    wait_until(
        "prefect-worker restarted and healthy",
        lambda: (
            lab_inspect(worker, "{{.RestartCount}} {{.State.Health.Status}}").split() not in (["0", "healthy"],)
            and lab_inspect(worker, "{{.State.Health.Status}}") == "healthy"
        ),
        BACK_BOUND,
    )
    assert types(lab, run["id"])[-1] == "RUNNING", (
        "the run's process died with its container: Prefect alone leaves it RUNNING"
    )

    # Then the whole lab stops and starts again while the dead run still shows RUNNING.
    running_before = [
        r["id"] for r in lab.post("/flow_runs/filter", {"flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}}})
    ]
    assert run["id"] in running_before
    lab.run("stop")
    lab.run("up", "--wait")
    wait_until(
        "the run CRASHED",
        lambda: "CRASHED" in types(lab, run["id"]),
        max(crash_bound(lab) - (time.monotonic() - killed_at), 30),
    )
    wait_until("the run COMPLETED again", lambda: completed_again(lab, run["id"]), 240, poll=2)
    assert_crashed_then_rerun(lab, run["id"])
    still = [r for r in running_before if lab.get(f"/flow_runs/{r}")["state"]["type"] == "RUNNING"]
    assert not still, [history(lab, r) for r in still]


def test_the_server_waits_30_s_not_15_minutes_for_an_event_seen_before_a_restart():
    """workshop_lab/prefect_speedups/event_ordering.py, in a fresh interpreter of the lab's venv (the `.pth`
    installs it), and Prefect's own 15 minutes with it switched off."""
    probe = str(PROBES / "print_event_ordering_lookback.py")
    patched = subprocess.run([sys.executable, probe], capture_output=True, text=True, check=True)
    stock = subprocess.run(
        [sys.executable, probe],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "LAB_PREFECT_EVENT_ORDERING": "0"},
    )
    assert patched.stdout.split() == ["30.0", "30.0"], patched.stdout + patched.stderr
    assert stock.stdout.split() == ["900.0", "900.0"], stock.stdout + stock.stderr
