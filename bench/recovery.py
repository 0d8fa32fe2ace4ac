"""Resources going down: how long the lab takes to heal, per service, on both labs.

    .venv/bin/python bench/recovery.py [--rounds 1] [--no-compose] [--out bench/results/recovery.json]

Starts labs of its own (own state folder, ports and compose project; the lab's default settings:
a run is marked CRASHED LAB_CRASHED_AFTER_SECONDS = 75 s after its last heartbeat). Per round and lab:
  clean          dask-crunch (chunks=300) with nothing killed: the baseline run time.
  prefect-worker killed mid-run (`./lab chaos kill prefect-worker`): seconds from the kill to the
                 worker healthy again, to the run's CRASHED (the automation), and to the rerun's
                 COMPLETED; the last as a ratio to the clean run.
  dask-worker-1  killed mid-map: seconds to the scheduler counting every worker again, and to the
                 run's COMPLETED (Dask re-runs the lost task), as a ratio to the clean run.
  dask-scheduler, upstream, inbox, prefect-server: killed while idle, seconds to healthy again.
Reports medians; `crashed_vs_bound` is kill-to-CRASHED over LAB_CRASHED_AFTER_SECONDS.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from _common import free_port  # bench/ is on sys.path when a bench runs as a script

from workshop_lab.stack.prefect_api import PrefectApi
from workshop_lab.stack.settings import PORT_SETTINGS, LabConfig

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
IDLE_SERVICES = ("dask-scheduler", "upstream", "inbox", "prefect-server")


class Lab:
    """One lab of the bench's own, driven through `./lab` as a learner would."""

    def __init__(self, docker: bool):
        self.docker = docker
        self.home = Path(tempfile.mkdtemp(prefix=f"bench-recovery-{'compose' if docker else 'embedded'}-"))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DASK_", "LAB_"))}
        self.env.update({name: str(free_port()) for name in PORT_SETTINGS}, LAB_HOME=str(self.home), LAB_SHELL="0")
        if docker:
            self.env["COMPOSE_PROJECT_NAME"] = f"bench-recovery-{uuid.uuid4().hex[:6]}"
        # The lab's API client (a 503 of a busy SQLite server retried with back-off).
        self.prefect = PrefectApi(f"http://127.0.0.1:{self.env['PREFECT_PORT']}/api")
        self.crashed_after = float(LabConfig.load(self.env)["LAB_CRASHED_AFTER_SECONDS"])

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        flag = ["--docker"] if self.docker and args[0] in ("up", "down", "reset") else []
        result = subprocess.run(
            [PYTHON, "-m", "workshop_lab", *args, *flag],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"./lab {' '.join(args)} exited {result.returncode}: {result.stdout[-1500:]}{result.stderr[-1500:]}"
            )
        return result

    # --- what the lab says about itself -------------------------------------------------------------
    def services(self) -> list[dict]:
        return json.loads(self.cli("status", "--json", check=False).stdout or "[]")

    def service(self, name: str) -> dict:
        """A service's row (compose names containers `<project>-<service>-<n>`)."""
        rows = self.services()
        match = [r for r in rows if r["name"] == name] or [
            r for r in rows if r["name"].endswith(f"-{name}-1") or r["name"].endswith(f"-{name}")
        ]
        if not match and name.startswith("dask-worker-"):
            match = [r for r in rows if r["name"].endswith(f"-dask-worker-{name.rsplit('-', 1)[1]}")]
        return match[0] if match else {}

    def restarted_and_healthy(self, name: str, restarts_before: int) -> bool:
        row = self.service(name)
        return bool(row) and row.get("healthy") and row.get("restarts", 0) > restarts_before

    def post(self, path: str, body: dict) -> list | dict:
        return self.prefect.post(path, body)

    def get(self, path: str) -> list | dict:
        return self.prefect.get(path)

    def start_crunch(self, chunks: int = 300) -> str:
        deployment = self.get("/deployments/name/dask-crunch/dask-crunch")
        return self.post(f"/deployments/{deployment['id']}/create_flow_run", {"parameters": {"chunks": chunks}})["id"]

    def crunching(self, run_id: str) -> bool:
        runs = self.post("/task_runs/filter", {"flow_runs": {"id": {"any_": [run_id]}}})
        return any(
            t["name"].startswith("crunch-batch") and (t.get("state") or {}).get("type") == "RUNNING" for t in runs
        )

    def states(self, run_id: str) -> list[dict]:
        return sorted(self.get(f"/flow_run_states/?flow_run_id={run_id}"), key=lambda s: s["timestamp"])


def wait(what: str, probe, timeout: float = 600, poll: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = probe()
        except (httpx.HTTPError, ValueError, RuntimeError, KeyError, TypeError):
            value = None
        if value:
            return value
        time.sleep(poll)
    raise RuntimeError(f"not after {timeout:.0f}s: {what}")


def stamp(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def clean_run(lab: Lab) -> float:
    run = lab.start_crunch()
    wait("clean run completed", lambda: lab.get(f"/flow_runs/{run}")["state"]["type"] == "COMPLETED")
    got = lab.get(f"/flow_runs/{run}")
    return stamp(got["end_time"]) - stamp(got["start_time"])


def worker_killed_mid_run(lab: Lab) -> dict[str, float]:
    run = lab.start_crunch()
    wait("the run crunching", lambda: lab.crunching(run))
    before = lab.service("prefect-worker").get("restarts", 0)
    killed = time.time()
    lab.cli("chaos", "kill", "prefect-worker")
    healthy = wait("prefect-worker back", lambda: lab.restarted_and_healthy("prefect-worker", before) and time.time())
    wait(
        "the rerun completed", lambda: lab.get(f"/flow_runs/{run}")["state"]["type"] == "COMPLETED", timeout=900, poll=1
    )
    states = lab.states(run)
    crashed = next(stamp(s["timestamp"]) for s in states if s["type"] == "CRASHED")
    completed = stamp(states[-1]["timestamp"])
    return {"to_healthy": healthy - killed, "to_crashed": crashed - killed, "to_rerun_completed": completed - killed}


def dask_worker_killed_mid_map(lab: Lab) -> dict[str, float]:
    run = lab.start_crunch()
    wait("the run crunching", lambda: lab.crunching(run))
    before = lab.service("dask-worker-1").get("restarts", 0)
    killed = time.time()
    lab.cli("chaos", "kill", "dask-worker-1")
    healthy = wait("dask-worker-1 back", lambda: lab.restarted_and_healthy("dask-worker-1", before) and time.time())
    wait(
        "the run completed", lambda: lab.get(f"/flow_runs/{run}")["state"]["type"] == "COMPLETED", timeout=600, poll=0.5
    )
    completed = stamp(lab.get(f"/flow_runs/{run}")["end_time"])
    return {"to_healthy": healthy - killed, "to_completed": completed - killed}


def idle_kill(lab: Lab, name: str) -> float:
    before = lab.service(name).get("restarts", 0)
    killed = time.time()
    lab.cli("chaos", "kill", name)
    return wait(f"{name} back", lambda: lab.restarted_and_healthy(name, before) and time.time()) - killed


def measure(lab: Lab, rounds: int) -> dict:
    samples: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        samples.setdefault(key, []).append(round(value, 2))

    lab.cli("up", "--no-first-flow")
    try:
        for _ in range(rounds):
            add("clean_run", clean_run(lab))
            for key, value in worker_killed_mid_run(lab).items():
                add(f"prefect-worker.{key}", value)
            for key, value in dask_worker_killed_mid_map(lab).items():
                add(f"dask-worker-1.{key}", value)
            for name in IDLE_SERVICES:
                add(f"{name}.to_healthy", idle_kill(lab, name))
                wait("every service healthy", lambda: all(r["healthy"] for r in lab.services()), timeout=180)
    finally:
        lab.cli("down", check=False)
        if lab.docker:
            subprocess.run(["docker", "compose", "down", "--volumes"], env=lab.env, cwd=REPO, capture_output=True)
        shutil.rmtree(lab.home, ignore_errors=True)
    median = {key: statistics.median(values) for key, values in samples.items()}
    return {
        "crashed_after_seconds": lab.crashed_after,
        "seconds": samples,
        "median_seconds": median,
        "rerun_completed_vs_clean_run": median["prefect-worker.to_rerun_completed"] / median["clean_run"],
        "dask_kill_completed_vs_clean_run": median["dask-worker-1.to_completed"] / median["clean_run"],
        "crashed_vs_bound": median["prefect-worker.to_crashed"] / lab.crashed_after,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-compose", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "recovery.json")
    args = parser.parse_args()
    use_compose = (
        not args.no_compose
        and shutil.which("docker")
        and subprocess.run(["docker", "info"], capture_output=True).returncode == 0
    )
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "rounds": args.rounds,
        "labs": {},
    }
    for docker in [False, True] if use_compose else [False]:
        name = "compose" if docker else "embedded"
        lab = Lab(docker)
        if docker:
            (lab.home / "run").mkdir(parents=True, exist_ok=True)
        report["labs"][name] = result = measure(lab, args.rounds)
        m = result["median_seconds"]
        print(
            f"{name}: worker killed mid-run: back in {m['prefect-worker.to_healthy']:.1f}s, run CRASHED after "
            f"{m['prefect-worker.to_crashed']:.1f}s (bound {result['crashed_after_seconds']:.0f}s), rerun COMPLETED after "
            f"{m['prefect-worker.to_rerun_completed']:.1f}s ({result['rerun_completed_vs_clean_run']:.2f}x a clean run of "
            f"{m['clean_run']:.1f}s); Dask worker killed mid-map: back in {m['dask-worker-1.to_healthy']:.1f}s, run "
            f"COMPLETED after {m['dask-worker-1.to_completed']:.1f}s; idle kills back in "
            + ", ".join(f"{s} {m[f'{s}.to_healthy']:.1f}s" for s in IDLE_SERVICES),
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
