"""Trigger deployment runs and read what they did, through the Prefect API.

Used by `./lab up` (the first flow), `./lab run`, the tests and the benchmarks. Import it only
after PREFECT_API_URL points at the lab: Prefect reads its settings from the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Any
from uuid import UUID

from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment

from workshop_lab.stack.settings import RERUN_TAG


@dataclass
class RunOutcome:
    flow_run: FlowRun
    seconds: float

    @property
    def state_type(self) -> str:
        state = self.flow_run.state
        return state.type.value if state else "UNKNOWN"

    @property
    def completed(self) -> bool:
        return self.state_type == "COMPLETED"


def run_and_wait(deployment: str, parameters: dict[str, Any] | None = None, timeout: float = 300) -> RunOutcome:
    """Create a run of a deployment, let the worker pick it up, and wait for a final state."""
    import time

    started = time.monotonic()
    flow_run = run_deployment(deployment, parameters=parameters or {}, timeout=timeout, poll_interval=1)
    return RunOutcome(flow_run, time.monotonic() - started)


def table_artifact(flow_run_id: UUID, key: str) -> list[dict[str, Any]]:
    """The rows of a table artifact that a flow run created."""
    import json

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])),
        )
    for artifact in artifacts:
        if artifact.key == key:
            data = artifact.data
            return json.loads(data) if isinstance(data, str) else list(data or [])
    return []


# --- `./lab run`: one clear line for a learner's mistake, the run's story while it runs ----------
class RunRefused(Exception):
    """The run was not created, or its outcome is known without a traceback: say why in one line."""


# A final state's message or error logs -> what to try. Checked in order; the first match wins.
HINTS = (
    (
        "SignatureMismatchError",
        "the flow's function does not take these parameters: compare the --param names with the flow's signature",
    ),
    ("No Secret block named", "create the Secret block first (the message above says how), then run again"),
    ("ConnectError", "a service the flow calls did not answer: ./lab status shows which one is down"),
    ("Connection refused", "a service the flow calls did not answer: ./lab status shows which one is down"),
    ("MissingResult", "the task's result was not stored: give the task persist_result=True or a cache policy"),
    ("FileNotFoundError", "a file the flow needs is missing: check the path in the error above, relative to flows/"),
    ("Process exited with status code", "the flow's process died: ./lab logs prefect-worker shows why"),
)
FINAL_OK = "COMPLETED"


def parse_parameters(items: list[str]) -> dict[str, Any]:
    """`--param NAME=VALUE` items: VALUE as JSON where it parses (8, true, [1,2]), else as text."""
    import json

    parameters: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise RunRefused(f"--param takes NAME=VALUE (got {item!r}), e.g. --param items=8")
        try:
            parameters[name] = json.loads(value)
        except json.JSONDecodeError:
            parameters[name] = value
    return parameters


def deployment_names(client) -> list[str]:
    flows = {f.id: f.name for f in client.read_flows(limit=200)}
    return sorted(f"{flows.get(d.flow_id, '?')}/{d.name}" for d in client.read_deployments(limit=200))


def find_deployment(client, name: str):
    """The deployment called FLOW/DEPLOYMENT, or RunRefused naming the closest ones."""
    import difflib

    from prefect.exceptions import ObjectNotFound

    flow_name, sep, deployment_name = name.partition("/")
    if not sep or not flow_name or not deployment_name or "/" in deployment_name:
        known = deployment_names(client)
        close = [k for k in known if name in k.split("/")] or difflib.get_close_matches(name, known, n=2, cutoff=0.5)
        suggestion = f"Did you mean {' or '.join(close)}? " if close else "e.g. hello-lab/hello-lab "
        raise RunRefused(
            f"{name!r} is not a deployment name: write FLOW/DEPLOYMENT. {suggestion}"
            "(.venv/bin/prefect deployment ls lists them)"
        )
    try:
        return client.read_deployment_by_name(name)
    except ObjectNotFound:
        close = difflib.get_close_matches(name, deployment_names(client), n=3, cutoff=0.5)
        suggestion = f" Did you mean {' or '.join(close)}?" if close else ""
        raise RunRefused(
            f"No deployment named {name}.{suggestion} (.venv/bin/prefect deployment ls lists them; "
            "a new deployment in flows/prefect.yaml needs ./lab deploy)"
        ) from None


def check_parameters(deployment_name: str, deployment, parameters: dict[str, Any]) -> None:
    """Refuse unknown parameter names and values the deployment's schema refuses, before any run exists."""
    import difflib

    from prefect.utilities.schema_tools.validation import ValidationError, validate

    schema = deployment.parameter_openapi_schema or {}
    known = list((schema.get("properties") or {}).keys())
    for name in parameters:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            listed = ", ".join(known) if known else "none"
            raise RunRefused(f"{deployment_name} has no parameter {name!r}.{hint} Its parameters: {listed}.")
    if not schema:
        return
    try:
        validate({**deployment.parameters, **parameters}, schema, raise_on_error=True, ignore_required=True)
    except ValidationError as error:
        raise RunRefused(f"{deployment_name} refuses these parameters: {error}") from None


def create_run(client, deployment_name: str, parameters: dict[str, Any]):
    from prefect.exceptions import PrefectHTTPStatusError

    deployment = find_deployment(client, deployment_name)
    check_parameters(deployment_name, deployment, parameters)
    try:
        return deployment, client.create_flow_run_from_deployment(deployment.id, parameters=parameters)
    except PrefectHTTPStatusError as error:
        detail = error.response.json().get("detail", error.response.text) if error.response.content else str(error)
        raise RunRefused(f"The server refused a run of {deployment_name}: {detail}") from None


def pool_polled(client, pool_name: str | None, within: float = 60) -> str:
    """Whether a worker polls the pool, as a sentence for a run that no worker picked up."""
    from datetime import datetime, timedelta

    if not pool_name:
        return "the deployment has no work pool, so no worker will ever run it (give it one in flows/prefect.yaml, then ./lab deploy)"
    recent = datetime.now(UTC) - timedelta(seconds=within)
    workers = [
        w
        for w in client.read_workers_for_work_pool(pool_name)
        if w.last_heartbeat_time and w.last_heartbeat_time > recent
    ]
    if not workers:
        return f"no worker polls its work pool {pool_name!r}" + (
            " (only the Docker lab's packaging profile serves it: docker compose --profile packaging up --wait)"
            if pool_name == "workshop-packaged"
            else ": is the lab's worker up? ./lab status"
        )
    return (
        f"worker {', '.join(w.name for w in workers)} polls {pool_name!r} but has not started it "
        "(a concurrency limit, or the worker is busy: see the run's state in the UI)"
    )


def one_line(message: str, width: int = 170) -> str:
    """A log message on one line: its first line, with its middle cut when long (a retry's
    "Retry 2/3 will start 0.9 second(s) from now" is at the end of a long exception)."""
    line = (message or "").splitlines()[0] if message else ""
    if len(message or "") > len(line) and "Retry " in message:
        line = f"{line} … {message.splitlines()[-1]}"
    return line if len(line) <= width else f"{line[: width - 75]} … {line[-70:]}"


# A crash found as a server starts reaches the rerun automation up to ~35 s later (prefect_event_ordering).
RERUN_WAIT_SECONDS = 60.0


def follow(client, flow_run_id: UUID, timeout: float, say, poll: float = 1.0):
    """Wait for a final state, printing each state change and the run's log lines as they arrive
    (in time order, each task run's lines named after it). Logs reach the API a moment after the
    state does (the flow's process flushes them as it exits): after a final state, keep reading
    until they stop coming, for a few seconds at most."""
    import time

    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId

    started = time.monotonic()
    last_state, seen_logs, task_names = None, set(), {}
    final_since = None
    crash_waited, crash_seen = None, 0.0

    def new_logs() -> int:
        logs = client.read_logs(
            LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200, offset=max(0, len(seen_logs) - 50)
        )
        fresh = sorted((log for log in logs if log.id not in seen_logs), key=lambda log: log.timestamp)
        if any(log.task_run_id and log.task_run_id not in task_names for log in fresh):
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])), limit=200
            )
            task_names.update({run.id: run.name for run in runs})
        for log in fresh:
            seen_logs.add(log.id)
            who = f"[{task_names.get(log.task_run_id, 'task')}] " if log.task_run_id else ""
            say(f"  {log.timestamp:%H:%M:%S} {logging_level(log.level):<7} {who}{one_line(log.message)}")
        return len(fresh)

    while True:
        flow_run = client.read_flow_run(flow_run_id)
        state = flow_run.state
        fresh = new_logs()
        label = (
            f"{state.type.value} ({state.name})"
            if state and state.name.upper() != state.type.value
            else (state.type.value if state else "UNKNOWN")
        )
        if label != last_state and not (state and state.is_final()):
            if state and state.name == "AwaitingRetry" and last_state != "CRASHED":
                # The rerun automation often requeues a crashed run before a poll sees it CRASHED.
                crashed = [st for st in client.read_flow_run_states(flow_run_id) if st.type.value == "CRASHED"]
                if crashed:
                    say(f"  state: CRASHED — {one_line(crashed[-1].message or 'its process died')}")
            say(f"  state: {label}")
            last_state = label
        if state and state.type.value == "CRASHED" and RERUN_TAG in (flow_run.tags or []) and state.id != crash_waited:
            # setup's automation queues a crashed run of such a deployment again: follow the rerun.
            crash_waited, crash_seen = state.id, time.monotonic()
            say(f"  state: CRASHED — {one_line(state.message or 'its process died')}")
            say(f"  ({RERUN_TAG}: the lab queues this run again; waiting up to {RERUN_WAIT_SECONDS:.0f}s for it)")
            last_state = "CRASHED"
        if crash_waited == (state.id if state else None) and time.monotonic() - crash_seen < RERUN_WAIT_SECONDS:
            time.sleep(poll)
            continue
        if state and state.is_final():
            final_since = final_since or time.monotonic()
            waited = time.monotonic() - final_since
            if (waited >= 1.0 and not fresh) or waited > 5:
                return flow_run, final_since - started
            time.sleep(0.5)
            continue
        if time.monotonic() - started > timeout:
            return flow_run, time.monotonic() - started
        time.sleep(poll)


def logging_level(level: int) -> str:
    import logging

    return logging.getLevelName(level)


def explain_failure(client, flow_run, say) -> None:
    """A final state other than COMPLETED: its message, the last error lines, and a hint."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterLevel

    state = flow_run.state
    message = (state.message or "").strip() if state else ""
    if message:
        say(f"  why: {message}")
    errors = client.read_logs(
        LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run.id]), level=LogFilterLevel(ge_=40)), limit=200
    )
    if errors:
        # The log with the traceback says most; its last lines are the error itself.
        chosen = next((e for e in reversed(errors) if "Traceback" in e.message), errors[-1])
        tail = [line for line in chosen.message.splitlines() if line.strip()][-6:]
        if not all(line.strip() in message for line in tail):
            say("  last error log lines:")
            for line in tail:
                say(f"    {line[:200]}")
    text = "\n".join([message, *(e.message for e in errors)])
    for pattern, hint in HINTS:
        if pattern in text:
            say(f"  hint: {hint}")
            break
