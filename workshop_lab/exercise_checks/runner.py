"""Runs a learner's flow file for `./lab check`, in a process of its own with the lab's environment.

    python -m workshop_lab.exercise_checks.runner SPEC.json OUT.json

SPEC is `{"file": ..., "steps": [...]}`; every step is one of the actions below, and OUT gets one
result per step, rewritten after each step, so a step that kills the process keeps what came before
(and a `child` step runs its step in a process of its own, for a step that is meant to die).
A step that raises is recorded with the error's last line and the next step still runs: the
last steps put back what the first ones changed (the upstream's chaos, a block, a variable).

The flow is called directly (`flow(**parameters, return_state=True)`), as
`.venv/bin/python flows/mine/NN_....py` would run it, and each `run` step imports the file afresh,
so settings the file reads at import (LAB_WAREHOUSE_PATH, ...) follow the step's `env`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")


def last_line(error: BaseException) -> str:
    """The line a traceback ends with: the error's type and the first line of its message."""
    message = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def load(path: str):
    """Import a flow file by path. Its module is pickled by value, as a script's `__main__` is, so
    its tasks and plain functions reach the Dask workers (who cannot import a file from flows/)."""
    import cloudpickle

    name = f"lab_check_{Path(path).stem}_{len(sys.modules)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(Path(path).resolve().parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)
    cloudpickle.register_pickle_by_value(module)
    return module


def find_flow(module, name: str):
    from prefect import Flow

    flows = {obj.name: obj for obj in vars(module).values() if isinstance(obj, Flow)}
    if name not in flows:
        raise LookupError(f"no flow named {name!r} in the file (it has: {', '.join(sorted(flows)) or 'no flows'})")
    return flows[name]


def upstream_requests() -> int | None:
    try:
        return httpx.get(f"{UPSTREAM_URL}/stats", timeout=10).json()["requests"]
    except Exception:
        return None


# --- the actions ---------------------------------------------------------------------------------
def do_run(step: dict[str, Any], file: str) -> dict[str, Any]:
    """Call a flow of the file with parameters; report its run id, final state and return value."""
    flow = find_flow(load(step.get("file", file)), step["flow"])
    before = upstream_requests()
    call = flow(**step.get("parameters", {}), return_state=True)
    state = asyncio.run(call) if inspect.isawaitable(call) else call
    result: Any = None
    if state.is_completed():
        value = state.result(raise_on_failure=False)
        result = asyncio.run(value) if inspect.isawaitable(value) else value
    return {
        "flow_run_id": str(state.state_details.flow_run_id),
        "state_type": state.type.value,
        "state_name": state.name,
        "message": state.message or "",
        "result": json.loads(json.dumps(result, default=str)),
        "upstream_requests": [before, upstream_requests()],
    }


def do_inspect(step: dict[str, Any], file: str) -> dict[str, Any]:
    """What a flow object says about itself: its task runner and its parameter schema."""
    flow = find_flow(load(file), step["flow"])
    runner = flow.task_runner
    return {
        "task_runner": type(runner).__name__,
        "address": getattr(runner, "address", None) or getattr(runner, "_client_kwargs", {}).get("address"),
        "parameters": flow.parameters.model_dump(mode="json"),
    }


def do_inspect_task(step: dict[str, Any], file: str) -> dict[str, Any]:
    """What a task of the file says about its retries and its cache (the options `@task(...)` set)."""
    from prefect import Task

    tasks = {obj.name: obj for obj in vars(load(file)).values() if isinstance(obj, Task)}
    if step["task"] not in tasks:
        raise LookupError(
            f"no task named {step['task']!r} in the file (it has: {', '.join(sorted(tasks)) or 'no tasks'})"
        )
    found = tasks[step["task"]]
    delays = found.retry_delay_seconds
    expiration = found.cache_expiration
    return {
        "retries": found.retries,
        "retry_delay_seconds": list(delays) if isinstance(delays, (list, tuple)) else delays,
        "retry_jitter_factor": found.retry_jitter_factor,
        "retry_condition_fn": getattr(found.retry_condition_fn, "__name__", None) if found.retry_condition_fn else None,
        "cache_policy": repr(found.cache_policy),
        "cache_expiration": expiration.total_seconds() if expiration else None,
    }


def do_call(step: dict[str, Any], file: str) -> dict[str, Any]:
    """Call a plain function of the file (e.g. `set_schedule_active("Oslo", True)`)."""
    function = getattr(load(file), step["function"], None)
    if not callable(function):
        raise LookupError(f"the file defines no function {step['function']!r}")
    value = function(*step.get("args", []), **step.get("kwargs", {}))
    value = asyncio.run(value) if inspect.isawaitable(value) else value
    return {"result": json.loads(json.dumps(value, default=str))}


def do_deploy(step: dict[str, Any], file: str) -> dict[str, Any]:
    """Create a deployment of the file's flow through the API with the file's `SCHEDULES`."""
    module = load(file)
    schedules = getattr(module, step["schedules"], None)
    if schedules is None:
        raise LookupError(f"the file defines no {step['schedules']}")
    deployment_id = find_flow(module, step["flow"]).to_deployment(name=step["name"], schedules=schedules).apply()
    return {"deployment_id": str(deployment_id)}


def do_delete_deployment(step: dict[str, Any], file: str) -> dict[str, Any]:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        try:
            client.delete_deployment(client.read_deployment_by_name(step["name"]).id)
        except Exception as error:  # noqa: BLE001 (there was nothing to delete)
            return {"deleted": False, "why": last_line(error)}
    return {"deleted": True}


def do_chaos(step: dict[str, Any], file: str) -> dict[str, Any]:
    """Reset the upstream (and its /stats), then apply `chaos`. The first chaos step keeps the
    settings it found; `"restore": true` puts them back (after a reset, so /stats starts afresh)."""
    current = httpx.get(f"{UPSTREAM_URL}/chaos", timeout=10).json()
    SAVED.setdefault("chaos", current)
    httpx.post(f"{UPSTREAM_URL}/chaos/reset", timeout=10).raise_for_status()
    chaos = SAVED["chaos"] if step.get("restore") else step.get("chaos")
    if chaos:
        httpx.patch(f"{UPSTREAM_URL}/chaos", json=chaos, timeout=10).raise_for_status()
    return {"chaos": httpx.get(f"{UPSTREAM_URL}/chaos", timeout=10).json()}


def do_stats(step: dict[str, Any], file: str) -> dict[str, Any]:
    return {"stats": httpx.get(f"{UPSTREAM_URL}/stats", timeout=10).json()}


def do_child(step: dict[str, Any], file: str) -> dict[str, Any]:
    """Run one step (`"step": {...}`, e.g. a run) in a child process of its own: that step may kill
    its process (a simulated crash, as `./lab chaos kill` does to a worker) and the steps after it
    still run here. Reports how the child ended: `returncode` (negative: killed by that signal,
    named in `signal`) and the step's own result when it lived to record one."""
    import signal
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="lab-check-child-") as folder:
        spec, out = Path(folder) / "spec.json", Path(folder) / "results.json"
        spec.write_text(json.dumps({"file": file, "steps": [step["step"]]}))
        completed = subprocess.run(
            [sys.executable, "-m", "workshop_lab.exercise_checks.runner", str(spec), str(out)],
            capture_output=True,
            text=True,
            timeout=step.get("timeout", 300),
        )
        results = json.loads(out.read_text()) if out.exists() else []
    code = completed.returncode
    tail = (completed.stderr.strip().splitlines() or [""])[-1][:300]
    return {
        "returncode": code,
        "signal": signal.Signals(-code).name if code < 0 else None,
        "result": results[0] if results else None,
        "stderr_tail": tail,
    }


def do_sql(step: dict[str, Any], file: str) -> dict[str, Any]:
    """One read-only query of the warehouse the step's environment names (LAB_WAREHOUSE_PATH): its rows."""
    import duckdb

    from workshop_lab.flow_tools.warehouse import warehouse_path

    path = warehouse_path()
    if not path.exists():
        raise LookupError(f"there is no warehouse file at {path}: the run wrote nothing")
    with duckdb.connect(str(path), read_only=True) as con:
        return {"rows": json.loads(json.dumps(con.execute(step["query"]).fetchall(), default=str))}


# What a step changed, by name, so that a later step with `"restore": true` can put it back.
SAVED: dict[str, Any] = {}


def do_secret(step: dict[str, Any], file: str) -> dict[str, Any]:
    """Set a Secret block's value, or put back the value it had (none: delete the block again)."""
    from prefect import get_client
    from prefect.blocks.system import Secret

    name = step["name"]
    if step.get("restore"):
        if name not in SAVED:
            return {"restored": False}
        if SAVED[name] is None:
            with get_client(sync_client=True) as client:
                client.delete_block_document(client.read_block_document_by_name(name, "secret").id)
        else:
            Secret(value=SAVED[name]).save(name, overwrite=True)
        return {"restored": True}
    try:
        SAVED[name] = Secret.load(name).get()
    except ValueError:
        SAVED[name] = None
    Secret(value=step["value"]).save(name, overwrite=True)
    return {}


def do_slack_url(step: dict[str, Any], file: str) -> dict[str, Any]:
    """Point a SlackWebhook block at another URL, or back at the one it had."""
    from prefect_slack import SlackWebhook

    name = step["name"]
    if step.get("restore"):
        if name in SAVED:
            SlackWebhook(url=SAVED[name]).save(name, overwrite=True)
        return {"restored": name in SAVED}
    SAVED[name] = SlackWebhook.load(name).url.get_secret_value()
    SlackWebhook(url=step["url"]).save(name, overwrite=True)
    return {}


def do_variable(step: dict[str, Any], file: str) -> dict[str, Any]:
    """Read a Prefect Variable; unset it (`"unset": true`, keeping the old value); or put it back."""
    from prefect.variables import Variable

    name = step["name"]
    current = Variable.get(name, default=None)
    if step.get("unset"):
        SAVED[name] = current
        Variable.unset(name)
    elif step.get("restore") and name in SAVED:
        if SAVED[name] is None:
            Variable.unset(name)
        else:
            Variable.set(name, SAVED[name], overwrite=True)
    return {"value": current}


def do_read_deployment(step: dict[str, Any], file: str) -> dict[str, Any]:
    """A deployment as the API has it (its schedules, parameters, ...)."""
    response = httpx.get(f"{os.environ['PREFECT_API_URL']}/deployments/name/{step['name']}", timeout=10)
    response.raise_for_status()
    return {"deployment": response.json()}


def do_dask_workers(step: dict[str, Any], file: str) -> dict[str, Any]:
    from distributed import Client

    with Client(os.environ["DASK_SCHEDULER_ADDRESS"], timeout=30) as client:
        return {"workers": sorted(client.scheduler_info(n_workers=-1)["workers"])}


ACTIONS = {name.removeprefix("do_"): value for name, value in dict(globals()).items() if name.startswith("do_")}


def main(spec_path: str, out_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    results: list[dict[str, Any]] = []
    for step in spec["steps"]:
        previous_env = dict(os.environ)
        os.environ.update(step.get("env", {}))
        try:
            results.append({"ok": True, **ACTIONS[step["do"]](step, spec["file"])})
        except BaseException as error:  # noqa: BLE001 (the learner's code may raise anything; report it)
            results.append({"ok": False, "error": last_line(error)})
            if isinstance(error, KeyboardInterrupt):
                raise
        finally:
            os.environ.clear()
            os.environ.update(previous_env)
        Path(out_path).write_text(json.dumps(results))


if __name__ == "__main__":
    main(*sys.argv[1:3])
