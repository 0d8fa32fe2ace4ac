"""The lab's one-shot setup step: work pool, blocks, deployments.

Runs as the compose `setup` service and as the embedded lab's `setup` process:

    python -m workshop_lab.stack.setup_lab [--force]

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

# Imported before the server is up, so that the time goes by while it starts: what `prefect deploy`
# loads on first use, what the flows import when it loads them, and the blocks' modules.
import duckdb  # noqa: F401
import yaml

try:  # Prefect's private modules: present in the Prefect the lab locks (requirements.lock)
    import prefect.cli.deploy._commands  # noqa: F401
    import prefect.cli.deploy._core  # noqa: F401  (imported inside the `deploy` command)
except ImportError as error:
    from importlib.metadata import version

    sys.exit(
        f"setup: prefect {version('prefect')} has no {error.name} (written for the locked prefect 3.9.1): "
        "install requirements.lock (./lab up does) or update workshop_lab/stack/setup_lab.py"
    )
import prefect_dask  # noqa: F401
import prefect_slack.messages  # noqa: F401
from prefect.cli import app as prefect_cli
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
from prefect.exceptions import ObjectAlreadyExists
from prefect.variables import Variable

from workshop_lab import __version__
from workshop_lab.stack.health import wait_until_healthy
from workshop_lab.stack.settings import FLOWS_DIR, PACKAGED_WORK_POOL, RERUN_TAG, WORK_POOL

FINGERPRINT_VARIABLE = "lab-setup-fingerprint"

# Prefect collections whose block types the course's flows use; registering them makes the
# blocks show up under Blocks → Add in the UI.
BLOCK_MODULES: tuple[str, ...] = ("prefect_slack",)
SLACK_BLOCK = "workshop-slack"  # prefect-slack's SlackWebhook, used by the flows
FAILURE_NOTIFIER_BLOCK = "workshop-failures"  # what the automation below sends through
FAILURE_AUTOMATION = "notify-on-failed-flow-runs"
# A flow run sends heartbeats while it runs (PREFECT_FLOWS_HEARTBEAT_FREQUENCY, from
# LAB_HEARTBEAT_SECONDS). When its process dies (a killed worker or container, the lab stopped
# mid-run) or hangs, nobody else would ever end it: Prefect leaves it RUNNING. This automation,
# Prefect's own pattern for such "zombie" runs, marks it CRASHED when LAB_CRASHED_AFTER_SECONDS
# pass without a heartbeat or any other event of the run.
CRASH_AUTOMATION = "crashed-when-heartbeats-stop"
# Runs of deployments tagged RERUN_TAG (flows/prefect.yaml: those safe to run twice) are put back
# in the queue once after they crash; the trigger's window makes it once an hour per run at most,
# so a run that crashes every time does not loop.
RERUN_AUTOMATION = "rerun-crashed-flow-runs"
RERUN_AT_MOST_EVERY_SECONDS = 3600
# The states a flow run's end is heard for: FAILED (and its TimedOut), CRASHED.
BAD_ENDINGS = ("prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.TimedOut")


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
        blocks = {
            obj
            for _, obj in inspect.getmembers(module, inspect.isclass)
            if issubclass(obj, Block) and obj.__module__.startswith(module_name)
        }
        for block in sorted(blocks, key=lambda b: b.__name__):
            block.register_type_and_schema()
        log(f"registered the blocks of {module_name}: {', '.join(sorted(b.__name__ for b in blocks))}")


def slack_webhook_url() -> str:
    """A real Slack webhook when SLACK_WEBHOOK_URL is set (.env), else the lab's inbox."""
    return (
        os.environ.get("SLACK_WEBHOOK_URL")
        or f"{os.environ.get('LAB_INBOX_URL', 'http://127.0.0.1:8701')}/hooks/workshop"
    )


def save_automation(automation) -> None:
    """Create the automation, or update the one of the same name (setup runs again and again)."""
    from prefect.automations import Automation

    try:
        automation.id = Automation.read(name=automation.name).id
        automation.update()
    except ValueError:
        automation.create()


def ensure_notifications() -> None:
    """The Slack block the flows use, and an automation that reports every flow run that ends badly."""
    from prefect.automations import Automation, EventTrigger, SendNotification
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect_slack import SlackWebhook

    url = slack_webhook_url()
    SlackWebhook(url=url).save(SLACK_BLOCK, overwrite=True)
    notifier_id = CustomWebhookNotificationBlock(
        name="lab-failures",
        url=url,
        method="POST",
        json_data={"text": "{{subject}}\n{{body}}"},
        allow_private_urls=True,  # the inbox lives on this machine (or the compose network)
    ).save(FAILURE_NOTIFIER_BLOCK, overwrite=True)
    save_automation(
        Automation(
            name=FAILURE_AUTOMATION,
            description="Sends a Slack message (the lab's inbox by default) whenever a flow run ends FAILED, "
            "TimedOut or CRASHED, with the state's message.",
            trigger=EventTrigger(
                expect=set(BAD_ENDINGS),
                match={"prefect.resource.id": "prefect.flow-run.*"},
                posture="Reactive",
                threshold=1,
            ),
            actions=[
                SendNotification(
                    block_document_id=notifier_id,
                    # The event's state, not the run's current one: a crashed run may be queued again already.
                    subject="Flow run {{ flow.name }}/{{ flow_run.name }} {{ event.payload.validated_state.name | lower }}",
                    body="{{ event.payload.validated_state.message }}\n{{ flow_run|ui_url }}",
                )
            ],
        )
    )
    where = "Slack (SLACK_WEBHOOK_URL)" if os.environ.get("SLACK_WEBHOOK_URL") else url
    log(f"blocks {SLACK_BLOCK!r} and {FAILURE_NOTIFIER_BLOCK!r} and automation {FAILURE_AUTOMATION!r} send to {where}")


def ensure_crash_handling() -> None:
    """No run stays RUNNING forever: missing heartbeats mark it CRASHED; safe runs go again once."""
    from datetime import timedelta

    from prefect.automations import Automation, EventTrigger
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState

    crashed_after = int(os.environ.get("LAB_CRASHED_AFTER_SECONDS") or 75)
    save_automation(
        Automation(
            name=CRASH_AUTOMATION,
            description=f"Marks a flow run CRASHED when {crashed_after} s pass after a heartbeat with no other "
            "heartbeat or event of it: its process died (a killed worker, container or lab) or hangs.",
            trigger=EventTrigger(
                posture="Proactive",
                match={"prefect.resource.id": "prefect.flow-run.*"},
                after={"prefect.flow-run.heartbeat"},
                # Any event of the run shows it is alive or has ended (a state change, a heartbeat).
                expect={"prefect.flow-run.*"},
                for_each={"prefect.resource.id"},
                threshold=1,
                within=timedelta(seconds=crashed_after),
            ),
            actions=[
                ChangeFlowRunState(
                    state=StateType.CRASHED,
                    message=f"No heartbeat for {crashed_after} s: the flow run's process died or hangs (its worker or "
                    f"container was killed, or the lab stopped mid-run). Marked by the automation {CRASH_AUTOMATION}.",
                )
            ],
        )
    )
    save_automation(
        Automation(
            name=RERUN_AUTOMATION,
            description=f"Puts a CRASHED run of a deployment tagged {RERUN_TAG!r} back in its work queue, once an hour "
            "at most: those deployments are safe to run twice (flows/prefect.yaml says why).",
            trigger=EventTrigger(
                posture="Reactive",
                expect={"prefect.flow-run.Crashed"},
                match={"prefect.resource.id": "prefect.flow-run.*"},
                match_related={"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{RERUN_TAG}"},
                for_each={"prefect.resource.id"},
                threshold=1,
                within=timedelta(seconds=RERUN_AT_MOST_EVERY_SECONDS),
            ),
            actions=[
                ChangeFlowRunState(
                    state=StateType.SCHEDULED,
                    name="AwaitingRetry",
                    force=True,
                    message=f"Crashed; queued again by the automation {RERUN_AUTOMATION} (tag {RERUN_TAG}).",
                )
            ],
        )
    )
    log(f"automations {CRASH_AUTOMATION!r} (after {crashed_after} s without a heartbeat) and {RERUN_AUTOMATION!r}")


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
    for name in ("LAB_FLOWS_DIR", "LAB_INBOX_URL", "SLACK_WEBHOOK_URL", "LAB_CRASHED_AFTER_SECONDS"):
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
        found = client.read_deployments(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=sorted(wanted)))
        )
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
            blocks = pool.submit(
                timed,
                "blocks and automation",
                lambda: (register_blocks(), ensure_notifications(), ensure_crash_handling()),
            )
            timed("deployments", lambda: deploy_flows(flows_dir))
            blocks.result()
        Variable.set(FINGERPRINT_VARIABLE, fingerprint, overwrite=True)
    log(f"done {time.monotonic() - started:.1f}s after the server was healthy")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
