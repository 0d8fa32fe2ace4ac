"""The lab's one-shot setup step: work pool, blocks, deployments.

Runs as the compose `setup` service and as the embedded lab's `setup` process:

    python -m workshop_lab.setup_lab [--force]

It imports Prefect first and only then waits for the server, so that its import time overlaps
the server's start-up. Every step is idempotent. Blocks, the automation and the deployments are
skipped when the server already has every deployment of flows/prefect.yaml and nothing they are
made from changed since the last setup (a fingerprint kept in the Prefect variable
`lab-setup-fingerprint`): a restart of the lab then waits for little but the server.
`--force` (`./lab deploy`) always redoes them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

# Imported before the server is up, so that the time goes by while it starts: what `prefect deploy`
# loads on first use, what the flows import when it loads them, and the blocks' modules.
import duckdb  # noqa: F401
import prefect.cli.deploy._commands  # noqa: F401
import prefect.cli.deploy._core  # noqa: F401  (imported inside the `deploy` command)
import prefect_dask  # noqa: F401
import prefect_slack.messages  # noqa: F401
from prefect.cli import app as prefect_cli
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
from prefect.exceptions import ObjectAlreadyExists
from prefect.variables import Variable

from workshop_lab import __version__
from workshop_lab.health import wait_until_healthy
from workshop_lab.settings import FLOWS_DIR, PACKAGED_WORK_POOL, WORK_POOL

FINGERPRINT_VARIABLE = "lab-setup-fingerprint"

# Prefect collections whose block types the course's flows use; registering them makes the
# blocks show up under Blocks → Add in the UI.
BLOCK_MODULES: tuple[str, ...] = ("prefect_slack",)
SLACK_BLOCK = "workshop-slack"            # prefect-slack's SlackWebhook, used by the flows
FAILURE_NOTIFIER_BLOCK = "workshop-failures"  # what the automation below sends through
FAILURE_AUTOMATION = "notify-on-failed-flow-runs"


def log(message: str) -> None:
    print(f"[setup] {message}", flush=True)


# What the UI's Work Pools page shows under each pool's name. Section 9's pool has no worker until
# its compose profile runs, so the UI marks it "Not Ready" (red) from the first minute: its
# description says that this is expected and what starts its worker.
WORK_POOL_DESCRIPTIONS = {
    WORK_POOL: "The lab's pool: the prefect-worker service (worker lab-worker) runs every course "
               "deployment from flows/ as a local process.",
    PACKAGED_WORK_POOL: "Course section 9 only (flows/09_docker_packaging.py). Its worker, packaged-worker, runs "
                        "in the Docker lab's opt-in profile: docker compose --profile packaging up --build --wait. "
                        "Until then this pool is Not Ready, as expected, and runs sent to it wait.",
}


def ensure_work_pools() -> None:
    """The lab's pool, and section 9's: `prefect deploy` refuses a deployment whose pool does not
    exist, and only the compose `packaged-worker` (profile `packaging`) would create that one.
    Each carries its description (WORK_POOL_DESCRIPTIONS), also on a pool an older setup made."""
    with get_client(sync_client=True) as client:
        for name, description in WORK_POOL_DESCRIPTIONS.items():
            try:
                client.create_work_pool(WorkPoolCreate(name=name, type="process", description=description))
                log(f"created work pool {name!r} (process)")
            except ObjectAlreadyExists:
                if client.read_work_pool(name).description != description:
                    client.update_work_pool(name, WorkPoolUpdate(description=description))
                    log(f"work pool {name!r} exists; updated its description")
                else:
                    log(f"work pool {name!r} exists")


def register_blocks() -> None:
    """What `prefect block register -m <module>` does, without the CLI (setup runs it in a thread)."""
    import importlib
    import inspect

    from prefect.blocks.core import Block

    for module_name in BLOCK_MODULES:
        module = importlib.import_module(module_name)
        blocks = {obj for _, obj in inspect.getmembers(module, inspect.isclass)
                  if issubclass(obj, Block) and obj.__module__.startswith(module_name)}
        for block in sorted(blocks, key=lambda b: b.__name__):
            block.register_type_and_schema()
        log(f"registered the blocks of {module_name}: {', '.join(sorted(b.__name__ for b in blocks))}")


def slack_webhook_url() -> str:
    """A real Slack webhook when SLACK_WEBHOOK_URL is set (.env), else the lab's inbox."""
    return os.environ.get("SLACK_WEBHOOK_URL") or f"{os.environ.get('LAB_INBOX_URL', 'http://127.0.0.1:8701')}/hooks/workshop"


def ensure_notifications() -> None:
    """The Slack block the flows use, and an automation that reports every failed flow run."""
    from prefect.automations import Automation, EventTrigger, SendNotification
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect_slack import SlackWebhook

    url = slack_webhook_url()
    SlackWebhook(url=url).save(SLACK_BLOCK, overwrite=True)
    notifier_id = CustomWebhookNotificationBlock(
        name="lab-failures", url=url, method="POST", json_data={"text": "{{subject}}\n{{body}}"},
        allow_private_urls=True,  # the inbox lives on this machine (or the compose network)
    ).save(FAILURE_NOTIFIER_BLOCK, overwrite=True)
    automation = Automation(
        name=FAILURE_AUTOMATION,
        description="Sends a Slack message (the lab's inbox by default) whenever a flow run fails.",
        trigger=EventTrigger(expect={"prefect.flow-run.Failed"}, match={"prefect.resource.id": "prefect.flow-run.*"},
                             posture="Reactive", threshold=1),
        actions=[SendNotification(
            block_document_id=notifier_id,
            subject="Flow run {{ flow.name }}/{{ flow_run.name }} failed",
            body="{{ flow_run.state.message }}\n{{ flow_run|ui_url }}",
        )],
    )
    try:
        existing = Automation.read(name=FAILURE_AUTOMATION)
        automation.id = existing.id
        automation.update()
    except ValueError:
        automation.create()
    where = "Slack (SLACK_WEBHOOK_URL)" if os.environ.get("SLACK_WEBHOOK_URL") else url
    log(f"blocks {SLACK_BLOCK!r} and {FAILURE_NOTIFIER_BLOCK!r} and automation {FAILURE_AUTOMATION!r} send to {where}")


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


def setup_fingerprint(flows_dir: Path) -> str:
    """What setup's work is made from: prefect.yaml, the flow files, where notifications go, the lab's version."""
    digest = hashlib.sha256(__version__.encode())
    for name in ("LAB_FLOWS_DIR", "LAB_INBOX_URL", "SLACK_WEBHOOK_URL"):
        digest.update(f"{name}={os.environ.get(name, '')}\0".encode())
    for path in sorted([flows_dir / "prefect.yaml", *flows_dir.rglob("*.py")]):
        digest.update(str(path.relative_to(flows_dir)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def setup_is_current(flows_dir: Path, fingerprint: str) -> bool:
    """The last setup used the same inputs, and every deployment of prefect.yaml still exists."""
    wanted = {d["name"] for d in yaml.safe_load((flows_dir / "prefect.yaml").read_text())["deployments"]}
    if Variable.get(FINGERPRINT_VARIABLE, default=None) != fingerprint:
        return False
    with get_client(sync_client=True) as client:
        found = client.read_deployments(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=sorted(wanted))))
    return wanted <= {d.name for d in found}


def timed(what: str, step) -> None:
    started = time.monotonic()
    step()
    log(f"{what}: {time.monotonic() - started:.1f}s")


def deploy_flows(flows_dir: Path) -> None:
    run_prefect_cli(["deploy", "--all"], cwd=flows_dir)
    log(f"deployed every flow in {flows_dir / 'prefect.yaml'}")


def main() -> int:
    api_url = os.environ.get("PREFECT_API_URL")
    if not api_url:
        print("[setup] PREFECT_API_URL is not set: it must point at the lab's Prefect server", file=sys.stderr)
        return 2
    flows_dir = Path(os.environ.get("LAB_FLOWS_DIR", FLOWS_DIR))
    # prefect.yaml's pull step reads LAB_FLOWS_DIR: where the worker finds this folder.
    os.environ.setdefault("LAB_FLOWS_DIR", str(flows_dir))
    wait_until_healthy(api_url)
    started = time.monotonic()
    log(f"server healthy at {api_url}")
    timed("work pools", ensure_work_pools)
    fingerprint = setup_fingerprint(flows_dir)
    if "--force" not in sys.argv[1:] and setup_is_current(flows_dir, fingerprint):
        log("blocks, automation and deployments are up to date with flows/ (./lab deploy redoes them)")
    else:
        # Blocks and the automation do not depend on the deployments: both go at once (the server
        # and this process mostly wait on each other's round trips).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="setup-blocks") as pool:
            blocks = pool.submit(timed, "blocks and automation", lambda: (register_blocks(), ensure_notifications()))
            timed("deployments", lambda: deploy_flows(flows_dir))
            blocks.result()
        Variable.set(FINGERPRINT_VARIABLE, fingerprint, overwrite=True)
    log(f"done {time.monotonic() - started:.1f}s after the server was healthy")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
