"""The lab's one-shot setup step: work pool, blocks, deployments.

Runs as the compose `setup` service and as the embedded lab's `setup` process:

    python -m workshop_lab.setup_lab

It imports Prefect first and only then waits for the server, so that on the embedded lab the
import time overlaps with the server's start-up. Every step is idempotent: running it again
updates what exists and creates what is missing.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

from prefect.cli import app as prefect_cli
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists

from workshop_lab.health import Unhealthy, check_prefect_server
from workshop_lab.settings import FLOWS_DIR, WORK_POOL

SERVER_WAIT_SECONDS = float(os.environ.get("LAB_SETUP_SERVER_WAIT_SECONDS", "180"))

# Prefect collections whose block types the course's flows use; registering them makes the
# blocks show up under Blocks → Add in the UI.
BLOCK_MODULES: tuple[str, ...] = ()


def log(message: str) -> None:
    print(f"[setup] {message}", flush=True)


def wait_for_server(api_url: str) -> None:
    deadline = time.monotonic() + SERVER_WAIT_SECONDS
    while True:
        try:
            check_prefect_server(api_url)
            return
        except Unhealthy as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"[setup] the Prefect server at {api_url} did not become healthy: {exc}")
            time.sleep(0.25)


def ensure_work_pool() -> None:
    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=WORK_POOL, type="process"))
            log(f"created work pool {WORK_POOL!r} (process)")
        except ObjectAlreadyExists:
            log(f"work pool {WORK_POOL!r} exists")


def register_blocks() -> None:
    for module in BLOCK_MODULES:
        run_prefect_cli(["block", "register", "-m", module])
        log(f"registered the blocks of {module}")


def run_prefect_cli(args: list[str], cwd: Path | None = None) -> None:
    """Run a `prefect` CLI command in this process (it is already imported)."""
    previous = Path.cwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        saved_argv, sys.argv = sys.argv, ["prefect", "--no-prompt", *args]
        try:
            prefect_cli()
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise SystemExit(f"[setup] `prefect {' '.join(args)}` failed (exit {exc.code})") from exc
        finally:
            sys.argv = saved_argv
    finally:
        os.chdir(previous)


def deploy_flows(flows_dir: Path) -> None:
    # prefect.yaml's pull step reads LAB_FLOWS_DIR: where the worker finds this folder.
    os.environ.setdefault("LAB_FLOWS_DIR", str(flows_dir))
    run_prefect_cli(["deploy", "--all"], cwd=flows_dir)
    log(f"deployed every flow in {flows_dir / 'prefect.yaml'}")


def main() -> int:
    api_url = os.environ.get("PREFECT_API_URL")
    if not api_url:
        print("[setup] PREFECT_API_URL is not set: it must point at the lab's Prefect server", file=sys.stderr)
        return 2
    flows_dir = Path(os.environ.get("LAB_FLOWS_DIR", FLOWS_DIR))
    started = time.monotonic()
    wait_for_server(api_url)
    log(f"server healthy at {api_url}")
    ensure_work_pool()
    register_blocks()
    deploy_flows(flows_dir)
    log(f"done in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
