"""`./lab check NN`: an exercise's acceptance checks, run against the learner's file on the running lab.

The learner's file lives in `flows/mine/NN_<slug>.py` (git-ignored, made from
`flows/exercises/starters/`). A check runs the file's flow for real, in a process of the lab's
venv with the environment a learner's shell gets (`workshop_lab.stack.shell.shell_environment`), through
`runner.py`; then it reads what the runs did from the Prefect API (states, task runs, artifacts,
logs), the upstream's /stats and the inbox, and prints each requirement as met or not, with what
it saw. The exercises' steps and requirements are declared in `exercises.py`.

The same checks run in CI on every solution (they must pass) and every starting point (it must fail).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from workshop_lab.stack.prefect_api import PrefectApi
from workshop_lab.stack.settings import FLOWS_DIR, REPO_ROOT, LabConfig
from workshop_lab.stack.shell import shell_environment

MINE_DIR = FLOWS_DIR / "mine"
STARTERS_DIR = FLOWS_DIR / "exercises" / "starters"
SOLUTIONS_DIR = FLOWS_DIR / "exercises" / "solutions"
RUN_TIMEOUT_SECONDS = 600


class NotChecked(Exception):
    """A requirement could not be looked at (its run did not happen): reported as not met."""


# --- what an exercise declares ---------------------------------------------------------------------
@dataclass(frozen=True)
class Requirement:
    text: str
    # Returns (met, what it saw). May raise: that is "not met", with the error as what it saw.
    check: Callable[[Check], tuple[bool, str]]


@dataclass(frozen=True)
class Exercise:
    number: str
    slug: str
    # The runner's steps (see runner.py); a function, as some name the check's own channel or folder.
    steps: Callable[[Check], list[dict[str, Any]]]
    requirements: list[Requirement]
    # Done in this process before the steps (e.g. build a scratch warehouse).
    prepare: Callable[[Check], None] | None = None

    @property
    def filename(self) -> str:
        return f"{self.number}_{self.slug}.py"


# --- what a check sees -------------------------------------------------------------------------------
@dataclass
class Check:
    """One check of one file: the lab's addresses, the runner's results, and readers of the API."""

    exercise: Exercise
    file: Path
    env: dict[str, str]
    scratch: Path
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The steps by id (their "what" names them in a NOT MET line), and the failed ones already reported.
    steps_by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    reported: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.api = PrefectApi(self.env["PREFECT_API_URL"])

    @property
    def channel(self) -> str:
        """An inbox channel of this check's own, so its messages are told from everyone else's."""
        return f"lab-check-{self.exercise.number}-{self.token}"

    @property
    def inbox_url(self) -> str:
        return self.env["LAB_INBOX_URL"]

    # the runner's results -------------------------------------------------------------------------
    def step(self, step_id: str) -> dict[str, Any]:
        """A step's result; NotChecked when it did not happen, saying which step and why, in full
        the first time and as "(see above)" on the requirements after it that need it too."""
        result = self.results.get(step_id)
        what = self.steps_by_id.get(step_id, {}).get("what", f"the step {step_id!r}")
        if result is None:
            raise NotChecked(f"not checked: {what} did not happen (the file's process stopped before it)")
        if not result["ok"]:
            failed = "could not start" if self.steps_by_id.get(step_id, {}).get("do") == "run" else "failed"
            if step_id in self.reported:
                raise NotChecked(f"not checked: {what} {failed} (see above)")
            self.reported.add(step_id)
            raise NotChecked(f"not checked: {what} {failed}: {result['error']}")
        return result

    def run(self, step_id: str) -> dict[str, Any]:
        """A `run` step's result, with the flow run as the API has it (`api_run`)."""
        result = self.step(step_id)
        if "api_run" not in result:
            result["api_run"] = self.get(f"/flow_runs/{result['flow_run_id']}")
        return result

    # the Prefect API ------------------------------------------------------------------------------
    def get(self, path: str) -> Any:
        return self.api.get(path)

    def post(self, path: str, body: dict) -> Any:
        return self.api.post(path, body)

    def task_runs(self, step_id: str) -> list[dict[str, Any]]:
        """The task runs of a finished run, once the API has caught up (PrefectApi.task_runs), read once."""
        result = self.run(step_id)
        if "task_runs" not in result:
            result["task_runs"] = self.api.task_runs(result["flow_run_id"], settle=30, poll=0.5)
        return result["task_runs"]

    def artifact(self, step_id: str, key: str) -> Any:
        """The data of the artifact `key` of a run (None: the run made no such artifact)."""
        found = self.post(
            "/artifacts/filter",
            {"artifacts": {"flow_run_id": {"any_": [self.run(step_id)["flow_run_id"]]}, "key": {"any_": [key]}}},
        )
        if not found:
            return None
        data = found[0]["data"]
        try:
            return json.loads(data) if isinstance(data, str) else data
        except ValueError:
            return data

    def artifacts(self, step_id: str) -> list[dict[str, Any]]:
        return self.post(
            "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [self.run(step_id)["flow_run_id"]]}}}
        )

    def logs(self, step_id: str) -> str:
        entries = self.post(
            "/logs/filter",
            {
                "logs": {"flow_run_id": {"any_": [self.run(step_id)["flow_run_id"]]}},
                "limit": 200,
                "sort": "TIMESTAMP_ASC",
            },
        )
        return "\n".join(entry["message"] for entry in entries)

    def inbox(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.inbox_url}/messages", params={"channel": self.channel}, timeout=10).json()


# --- shared requirement builders ---------------------------------------------------------------
def state_of(check: Check, step_id: str) -> str:
    run = check.run(step_id)
    message = run["message"].strip().splitlines()  # the first line names the error; the last is often a link
    return run["state_type"] + (f" ({message[0][:200]})" if message else "")


def ends(step_id: str, state: str = "COMPLETED") -> Callable[[Check], tuple[bool, str]]:
    """The run of `step_id` ended in `state`."""

    def check(c: Check) -> tuple[bool, str]:
        return c.run(step_id)["state_type"] == state, f"the run ended {state_of(c, step_id)}"

    return check


def named(task_runs: list[dict[str, Any]], *prefixes: str) -> list[dict[str, Any]]:
    """Task runs whose name starts with one of the prefixes (Prefect names them `task-name-abc`)."""
    return [t for t in task_runs if t["name"].startswith(prefixes)]


def most_in_flight(runs: list[dict[str, Any]]) -> int:
    """The most task runs that were running at the same moment, from their start and end times."""
    edges = sorted(
        [(r["start_time"], 1) for r in runs if r["start_time"]] + [(r["end_time"], -1) for r in runs if r["end_time"]],
        key=lambda e: (e[0], e[1]),
    )
    current = peak = 0
    for _, change in edges:
        current += change
        peak = max(peak, current)
    return peak


# --- the command -------------------------------------------------------------------------------
def relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def run_steps(check: Check, steps: list[dict[str, Any]], say: Callable[[str], None]) -> None:
    """Run the steps in one process of the lab's venv; keep each step's result under its id."""
    spec, out = check.scratch / "spec.json", check.scratch / "results.json"
    spec.write_text(json.dumps({"file": str(check.file), "steps": steps}))
    env = {**os.environ, **check.env, "PYTHONUNBUFFERED": "1"}
    env.pop("LAB_INSTANCE", None)
    completed = subprocess.run(
        [sys.executable, "-m", "workshop_lab.exercise_checks.runner", str(spec), str(out)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
    )
    results = json.loads(out.read_text()) if out.exists() else []
    if completed.returncode != 0 and len(results) < len(steps):
        tail = (completed.stderr.strip().splitlines() or [f"exit {completed.returncode}"])[-1]
        results.append({"ok": False, "error": f"the flow's process died: {tail}"})
    check.steps_by_id = {step["id"]: step for step in steps if "id" in step}
    for step, result in zip(steps, results, strict=False):  # a process that died wrote fewer results
        check.results[step.get("id", f"step-{len(check.results)}")] = result


def check_exercise(exercise: str, file: Path | None, config: LabConfig, say: Callable[[str], None]) -> int:
    """Run one exercise's checks; 0 every requirement met, 1 some not met, 2 bad input (one line)."""
    from workshop_lab.exercise_checks.exercises import EXERCISES

    number = exercise.strip().zfill(2)[:2] if exercise.strip().isdigit() else exercise.strip()
    if number not in EXERCISES:
        say(f"lab check: there is no exercise {exercise!r}. Exercises: {', '.join(EXERCISES)} (e.g. ./lab check 07)")
        return 2
    spec = EXERCISES[number]
    path = (file if file.is_absolute() else Path.cwd() / file) if file else MINE_DIR / spec.filename
    if not path.is_file():
        if file:
            say(
                f"lab check: {file} is not a file. Check your own with ./lab check {number}, or give --file an existing path."
            )
        else:
            say(
                f"lab check: {relative(path)} does not exist yet. Start it with: "
                f"mkdir -p flows/mine && cp flows/exercises/starters/{spec.filename} flows/mine/"
            )
        return 2
    env = shell_environment(config)
    try:
        httpx.get(f"{env['PREFECT_API_URL']}/health", timeout=5).raise_for_status()
    except httpx.HTTPError:
        say(f"lab check: no lab answers at {env['PREFECT_API_URL']}: start it with ./lab up, then check again.")
        return 2

    say(
        f"Checking {relative(path)} against exercise {number} (flows/exercises/{number}_*.md) on the lab at {config.ui_url} ..."
    )
    with tempfile.TemporaryDirectory(prefix=f"lab-check-{number}-") as scratch:
        check = Check(spec, path, env, Path(scratch))
        if spec.prepare:
            spec.prepare(check)
        started = time.monotonic()
        run_steps(check, spec.steps(check), say)
        met = 0
        for requirement in spec.requirements:
            try:
                ok, saw = requirement.check(check)
            except (NotChecked, AssertionError) as error:  # AssertionError: a builder's "there is nothing to read"
                ok, saw = False, str(error)
            except Exception as error:  # noqa: BLE001 (a learner's result of another shape: not met, say what)
                ok, saw = False, f"could not read it: {type(error).__name__}: {error}"
            met += bool(ok)
            say(f"  {'met    ' if ok else 'NOT MET'}  {requirement.text}: {saw}")
    total = len(spec.requirements)
    seconds = time.monotonic() - started
    if met == total:
        say(f"Exercise {number}: all {total} requirements met ({seconds:.0f}s). Well done.")
        return 0
    say(
        f"Exercise {number}: {met} of {total} requirements met ({seconds:.0f}s). "
        f"Fix the NOT MET lines and run ./lab check {number} again; the runs are in the UI, {config.ui_url}/runs"
    )
    return 1


__all__ = ["check_exercise", "Check", "Exercise", "Requirement", "ends", "named", "most_in_flight", "state_of", "re"]
