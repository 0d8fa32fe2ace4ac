"""The lab's services as local processes, and the environment contract of both labs.

`lab_environment` is what every lab process knows and each `Service` is one role of
`docker-compose.yml` with the same name, the same command and the same environment (its
`x-lab-env` plus the service's own `environment:`), with loopback addresses and host paths
instead of service names and container paths. tests/test_environment_contract.py checks that
both files say the same, in both directions, and names each place where they may differ: change
an environment variable or a command here and in docker-compose.yml together.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from workshop_lab.stack import health
from workshop_lab.stack.settings import (
    AIRBYTE_DIR,
    DBT_PROJECT_DIR,
    FLOWS_DIR,
    SNOWFLAKE_SETTINGS,
    WORK_POOL,
    WORKER_NAME,
    LabConfig,
)

BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Service:
    name: str
    command: list[str]
    # Returns a one-line description when healthy; raises health.Unhealthy otherwise.
    check: Callable[[], str]
    url: str = ""
    # (setting name, port) pairs the service listens on: checked before start.
    ports: tuple[tuple[str, int], ...] = ()
    # A one-shot step: done when the process exits 0, not a long-running service.
    one_shot: bool = False
    # Started together with everything else; these are waited on before it counts as healthy.
    after: tuple[str, ...] = ()
    start_timeout: float = 120.0
    # Scheduling priority (nice). Everything but the server starts at 10, so that on a 2-core
    # laptop the server's start-up (the longest step) gets the CPU first.
    nice: int = 10
    # How `down` asks it to stop first (then SIGKILL after a grace period).
    stop_signal: int = signal.SIGTERM
    extra_env: dict[str, str] = field(default_factory=dict)


# Dask's event-loop "tick" (how often each worker and scheduler checks its own event loop for
# stalls) is 20 ms by default. Each tick takes the GIL from a task running pure Python: on the
# lab's 2-core laptops, module 08's work ran about 20% slower in a Dask worker than in a plain
# process with it, a few percent with 1 s (bench/dask_overhead.py; README.md). Compose sets the same.
DASK_TICK_INTERVAL = "1s"

# Only in the Dask workers' processes (compose's dask-worker sets the same):
# - Prefect's console log handler at WARNING. Every task run on a worker logs "Finished in state
#   ..." at INFO, and the console handler's rich formatting of that line cost more CPU than the
#   line's trip to the API. The UI still shows every task run's logs (they go to the API at INFO,
#   as before); only the worker's own log file (`./lab logs dask-worker-1`) loses the INFO lines.
# - Dask's sampling profiler off: every 10 ms it walks the stack of the running task, deep for a
#   Prefect task run, on the worker's event loop. The dashboard's Profile page stays empty.
DASK_WORKER_ENV = {
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING",
    "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
}


# Only in the Prefect server's process (compose's prefect-server sets the same): how far ahead its
# scheduler service creates a schedule's runs. Prefect's default is at least an hour ahead (and up
# to 100 runs): 60 Scheduled runs of hello-schedule's 60 s interval from the first minute, which
# flood the Runs page and the run history that module 12 analyses. The lab keeps at least 3 runs
# and 5 minutes ahead, at most 10 runs. The scheduler tops that up every minute (its loop), so a
# run a minute always has its next runs waiting. (Durations are ISO 8601: Prefect refuses "300".)
SCHEDULER_LOOKAHEAD_ENV = {
    "PREFECT_SERVER_SERVICES_SCHEDULER_MIN_SCHEDULED_TIME": "PT5M",
    "PREFECT_SERVER_SERVICES_SCHEDULER_MIN_RUNS": "3",
    "PREFECT_SERVER_SERVICES_SCHEDULER_MAX_RUNS": "10",
}


def lab_environment(config: LabConfig) -> dict[str, str]:
    """Environment shared by every lab process: the same names compose sets in `x-lab-env`."""
    return {
        "PREFECT_HOME": str(config.prefect_home),
        "PREFECT_API_URL": config.api_url,
        # The API as the learner's browser sees it (the UI's calls, the run links Prefect logs).
        "PREFECT_UI_API_URL": config.ui_api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOCAL_STORAGE_PATH": str(config.results_dir),
        "PREFECT_WORKER_QUERY_SECONDS": config["PREFECT_WORKER_QUERY_SECONDS"],
        # Every flow run sends a heartbeat event this often; setup's automation marks a run CRASHED
        # when they stop for LAB_CRASHED_AFTER_SECONDS (its process died, or hangs).
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": config["LAB_HEARTBEAT_SECONDS"],
        "LAB_CRASHED_AFTER_SECONDS": config["LAB_CRASHED_AFTER_SECONDS"],
        # Read by workshop_lab/prefect_speedups/ in every process: 1 (CI) fails one whose patch fails.
        "LAB_PREFECT_SPEEDUPS_STRICT": config["LAB_PREFECT_SPEEDUPS_STRICT"],
        "DASK_SCHEDULER_ADDRESS": config.scheduler_address,
        "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": DASK_TICK_INTERVAL,
        "LAB_WAREHOUSE_PATH": str(config.warehouse_path),
        "LAB_UPSTREAM_URL": f"http://{config.local_host}:{config['UPSTREAM_PORT']}",
        "LAB_INBOX_URL": f"http://{config.local_host}:{config['INBOX_PORT']}",
        "SLACK_WEBHOOK_URL": config["SLACK_WEBHOOK_URL"],
        **{name: config[name] for name in SNOWFLAKE_SETTINGS},
        "LAB_FLOWS_DIR": str(FLOWS_DIR),
        # The ELT pipeline (flows/13_elt.py): the Airbyte environment's Python, the source config
        # and the dbt project.
        "LAB_AIRBYTE_PYTHON": str(config.airbyte_python),
        "LAB_AIRBYTE_DIR": str(AIRBYTE_DIR),
        "LAB_DBT_PROJECT_DIR": str(DBT_PROJECT_DIR),
        # The Airbyte platform (flows/14_airbyte_platform.py, workshop_lab/flow_tools/airbyte_api.py):
        # basic auth for the compose profile, client credentials for abctl installs and Cloud.
        "AIRBYTE_URL": f"http://{config.local_host}:{config['AIRBYTE_PORT']}",
        "AIRBYTE_USERNAME": config["AIRBYTE_USERNAME"],
        "AIRBYTE_PASSWORD": config["AIRBYTE_PASSWORD"],
        "AIRBYTE_CLIENT_ID": config["AIRBYTE_CLIENT_ID"],
        "AIRBYTE_CLIENT_SECRET": config["AIRBYTE_CLIENT_SECRET"],
        "LAB_WORKER_NAME": WORKER_NAME,
        # Every process the lab starts carries this marker, and so do their children:
        # `down` finds stragglers by it, and the tests prove none is left.
        "LAB_INSTANCE": str(config.home),
    }


def embedded_services(config: LabConfig) -> list[Service]:
    """The roles of the compose file, in dependency order (postgres: only when LAB_DATABASE_URL is set)."""
    bind = config["LAB_BIND_ADDRESS"]
    workers = int(config["DASK_WORKERS"])
    server_env = dict(SCHEDULER_LOOKAHEAD_ENV)
    if config["LAB_DATABASE_URL"]:
        server_env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = config["LAB_DATABASE_URL"]
    return [
        Service(
            name="prefect-server",
            command=[
                sys.executable,
                "-m",
                "workshop_lab.stack.launch",
                "--seed-database",
                "--",
                "server",
                "start",
                "--host",
                bind,
                "--port",
                config["PREFECT_PORT"],
            ],
            check=lambda: health.check_prefect_server(config.api_url),
            url=config.ui_url,
            ports=(("PREFECT_PORT", config.port("PREFECT_PORT")),),
            nice=0,
            extra_env=server_env,
        ),
        Service(
            name="dask-scheduler",
            command=[
                str(BIN / "dask"),
                "scheduler",
                "--host",
                bind,
                "--port",
                config["DASK_SCHEDULER_PORT"],
                "--dashboard-address",
                f"{bind}:{config['DASK_DASHBOARD_PORT']}",
            ],
            check=lambda: health.check_dask_scheduler(config.dashboard_api_url),
            url=config.dashboard_url,
            ports=(
                ("DASK_SCHEDULER_PORT", config.port("DASK_SCHEDULER_PORT")),
                ("DASK_DASHBOARD_PORT", config.port("DASK_DASHBOARD_PORT")),
            ),
        ),
        # One process per Dask worker, each in its own session like compose's containers: under
        # Linux's per-session CPU sharing (autogroup), workers sharing a session share one CPU share.
        *(
            Service(
                name=f"dask-worker-{n}",
                command=[
                    str(BIN / "dask"),
                    "worker",
                    config.scheduler_address,
                    "--name",
                    f"dask-worker-{n}",
                    "--nthreads",
                    config["DASK_WORKER_THREADS"],
                    "--memory-limit",
                    config["DASK_WORKER_MEMORY_LIMIT"],
                    "--host",
                    config.local_host,
                    "--no-dashboard",
                    "--local-directory",
                    str(config.home / "dask"),
                ],
                check=lambda: health.check_dask_workers(config.dashboard_api_url, workers),
                after=("dask-scheduler",),
                extra_env=DASK_WORKER_ENV,
            )
            for n in range(1, workers + 1)
        ),
        Service(
            name="upstream",
            command=[
                sys.executable,
                "-m",
                "workshop_lab.course_services.upstream",
                "--host",
                bind,
                "--port",
                config["UPSTREAM_PORT"],
            ],
            check=lambda: health.check_url(f"http://{config.local_host}:{config['UPSTREAM_PORT']}/health"),
            url=config.upstream_url,
            ports=(("UPSTREAM_PORT", config.port("UPSTREAM_PORT")),),
        ),
        Service(
            name="inbox",
            command=[
                sys.executable,
                "-m",
                "workshop_lab.course_services.inbox",
                "--host",
                bind,
                "--port",
                config["INBOX_PORT"],
            ],
            check=lambda: health.check_url(f"http://{config.local_host}:{config['INBOX_PORT']}/health"),
            url=config.inbox_url,
            ports=(("INBOX_PORT", config.port("INBOX_PORT")),),
            extra_env={"INBOX_FILE": str(config.home / "inbox" / "messages.jsonl")},
        ),
        Service(
            name="setup",
            command=[sys.executable, "-m", "workshop_lab.stack.setup_lab"],
            check=lambda: "work pool and deployments ready",
            one_shot=True,
            nice=0,
            after=("prefect-server",),
        ),
        # Compose's worker adds --with-healthcheck, which serves /health for Docker's healthcheck on
        # port 8080 of every address (Prefect's PREFECT_WORKER_WEBSERVER_* defaults): on a laptop that
        # would expose it beyond LAB_BIND_ADDRESS and collide with a second lab or anything on 8080.
        # The embedded lab asks the server instead: the worker is ONLINE while its heartbeats arrive.
        Service(
            name="prefect-worker",
            command=[
                sys.executable,
                "-m",
                "workshop_lab.stack.launch",
                "--after-prefect-server",
                "--",
                "worker",
                "start",
                "--pool",
                WORK_POOL,
                "--type",
                "process",
                "--name",
                WORKER_NAME,
            ],
            check=lambda: health.check_prefect_worker(config.api_url, WORKER_NAME),
            stop_signal=signal.SIGINT,  # `prefect worker start` ignores SIGTERM
            after=("prefect-server", "setup"),
        ),
    ]
