"""The lab's settings: the one place each setting is defined.

Both ways of running the lab read these names. `docker-compose.yml` uses them as
`${NAME:-default}` and `.env.example` lists them; `tests/test_config.py` checks that both
mirror this table exactly, so a default is changed here and nowhere else.

Precedence, the same as Docker Compose's: the process environment, then `.env` in the repo
root, then the default below; an empty value takes the default, as Compose's `${NAME:-default}`
does. `.env` is read by python-dotenv, whose rules are Compose's (tests/test_config.py): the one
reader of `.env` for `./lab`, the embedded lab and the tests.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values
from dotenv.parser import parse_stream

REPO_ROOT = Path(__file__).resolve().parents[2]
FLOWS_DIR = REPO_ROOT / "flows"
# The ELT pipeline's files (flows/13_elt.py): the Airbyte source config and the dbt project.
AIRBYTE_DIR = REPO_ROOT / "airbyte"
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOTENV_FILE = REPO_ROOT / ".env"

# Names that are not settings: the course material refers to them.
WORK_POOL = "workshop"
# Section 9's pool, served only by the compose `packaged-worker` (profile `packaging`).
PACKAGED_WORK_POOL = "workshop-packaged"
# Deployments tagged so (flows/prefect.yaml) are run again after a crash: setup_lab's automation.
RERUN_TAG = "rerun-on-crash"
WORKER_NAME = "lab-worker"
FIRST_FLOW_DEPLOYMENT = "hello-lab/hello-lab"


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    meaning: str
    # "both", "compose" or "embedded": where the setting has an effect.
    scope: str = "both"


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "LAB_BIND_ADDRESS",
        "127.0.0.1",
        "Host address the lab's ports bind to. Keep 127.0.0.1 unless you mean to expose the lab to your network.",
    ),
    Setting("PREFECT_PORT", "4200", "Prefect server: the UI and the API (http://localhost:PORT)."),
    Setting("DASK_SCHEDULER_PORT", "8786", "Dask scheduler: where flows submit work (tcp://localhost:PORT)."),
    Setting("DASK_DASHBOARD_PORT", "8787", "Dask dashboard (http://localhost:PORT/status)."),
    Setting(
        "UPSTREAM_PORT",
        "8700",
        "The flaky upstream API the course's flows call (http://localhost:PORT; chaos at /chaos).",
    ),
    Setting(
        "INBOX_PORT", "8701", "The webhook inbox that shows the lab's Slack notifications (http://localhost:PORT)."
    ),
    Setting(
        "SLACK_WEBHOOK_URL",
        "",
        "A real Slack incoming-webhook URL for the flows' notifications (a secret: .env only). Empty: the lab's inbox.",
    ),
    Setting(
        "DASK_WORKERS",
        "2",
        "How many Dask workers start (compose: docker compose up --scale dask-worker=N also works).",
    ),
    Setting("DASK_WORKER_THREADS", "1", "Threads per Dask worker."),
    Setting("DASK_WORKER_MEMORY_LIMIT", "1GiB", "Memory limit per Dask worker before it spills and pauses."),
    Setting(
        "PREFECT_WORKER_QUERY_SECONDS", "2", "How often the Prefect worker polls for runs (Prefect's default is 10 s)."
    ),
    Setting(
        "LAB_HEARTBEAT_SECONDS",
        "30",
        "How often a running flow sends a heartbeat (PREFECT_FLOWS_HEARTBEAT_FREQUENCY; Prefect's minimum is 30).",
    ),
    Setting(
        "LAB_CRASHED_AFTER_SECONDS",
        "75",
        "A flow run with no heartbeat for this long is marked CRASHED by the server "
        "(automation crashed-when-heartbeats-stop). Longer than one heartbeat: 75 s lets one be late.",
    ),
    Setting(
        "LAB_PREFECT_SPEEDUPS_STRICT", "0", "1: a Prefect speed-up that fails to apply fails the process (CI uses it)"
    ),
    Setting(
        "LAB_DATABASE_URL",
        "",
        "Prefect's database. Empty: SQLite in the state folder (embedded), the postgres service (compose). "
        "Example: postgresql+asyncpg://prefect:prefect@localhost:5432/prefect",
        scope="embedded",
    ),
    Setting(
        "POSTGRES_USER",
        "prefect",
        "Postgres user for Prefect's database (never published outside Docker).",
        scope="compose",
    ),
    Setting(
        "POSTGRES_PASSWORD",
        "prefect",
        "Postgres password for Prefect's database. Local learning only: change it in .env.",
        scope="compose",
    ),
    Setting("POSTGRES_DB", "prefect", "Postgres database name for Prefect.", scope="compose"),
    Setting(
        "LAB_IMAGE",
        "workflow-orchestration-lab:0.1.0",
        "Tag of the one image every Python service runs.",
        scope="compose",
    ),
    Setting("POSTGRES_IMAGE", "postgres:15.10-bookworm", "Postgres image for Prefect's database.", scope="compose"),
    # The ELT pipeline's Snowflake option (flows/13_elt.py target="snowflake"; dbt_project/profiles.yml).
    Setting(
        "LAB_WITH_PYAIRBYTE",
        "0",
        "1: install PyAirbyte (about 300 MB) beside the Airbyte connector, which the Snowflake "
        "target loads through. Read when ./lab builds .venv-airbyte and when the image is built.",
    ),
    Setting(
        "LAB_AIRBYTE_VENV",
        ".venv-airbyte",
        "The Airbyte environment (the connector; PyAirbyte, opt-in) that ./lab builds and the "
        "ELT flow runs (relative to the repo). In Docker it is the image's /opt/airbyte-venv.",
        scope="embedded",
    ),
    Setting(
        "SNOWFLAKE_ACCOUNT",
        "",
        "Snowflake account identifier (e.g. xy12345.eu-central-1). Empty: the ELT pipeline uses DuckDB only.",
    ),
    Setting("SNOWFLAKE_USER", "", "Snowflake user for the ELT pipeline."),
    Setting("SNOWFLAKE_PASSWORD", "", "Snowflake password (a secret: .env only)."),
    Setting("SNOWFLAKE_ROLE", "", "Snowflake role (empty: the user's default)."),
    Setting("SNOWFLAKE_WAREHOUSE", "", "Snowflake virtual warehouse that runs the loads and dbt."),
    Setting("SNOWFLAKE_DATABASE", "", "Snowflake database: raw tables in its RAW schema, dbt's models beside them."),
    Setting("SNOWFLAKE_SCHEMA", "ANALYTICS", "Snowflake schema dbt builds into when no folder schema applies."),
    # The Airbyte platform (docker compose --profile airbyte; airbyte/platform/compose.yaml).
    Setting(
        "AIRBYTE_PORT",
        "8000",
        "Airbyte's UI and API on the host (http://localhost:PORT), when the airbyte profile runs.",
    ),
    Setting("AIRBYTE_USERNAME", "airbyte", "Airbyte's basic-auth user (the compose release)."),
    Setting("AIRBYTE_PASSWORD", "password", "Airbyte's basic-auth password. Local learning only: change it in .env."),
    Setting(
        "AIRBYTE_CLIENT_ID",
        "",
        "Client credentials of an abctl install or Airbyte Cloud (`abctl local credentials`); "
        "used instead of basic auth when both are set.",
    ),
    Setting("AIRBYTE_CLIENT_SECRET", "", "Its client secret (a secret: .env only)."),
    Setting(
        "LAB_HOME",
        ".lab",
        "State folder of the embedded lab: Prefect's database, results, warehouse, logs (relative to the repo).",
        scope="embedded",
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}
# The settings that are ports the lab listens on.
SNOWFLAKE_SETTINGS = tuple(s.name for s in SETTINGS if s.name.startswith("SNOWFLAKE_"))
PORT_SETTINGS = ("PREFECT_PORT", "DASK_SCHEDULER_PORT", "DASK_DASHBOARD_PORT", "UPSTREAM_PORT", "INBOX_PORT")


def read_dotenv(path: Path = DOTENV_FILE) -> dict[str, str]:
    """The `NAME=value` lines of a `.env` file, read as Compose reads them (python-dotenv: an
    unquoted value ends at ` #`, a quoted one at its closing quote; `${NAME}` is expanded, except
    in single quotes, which Compose takes literally and python-dotenv would not). A bare `NAME`
    line is no value."""
    if not path.exists():
        return {}
    literal = dotenv_values(path, interpolate=False)
    expanded = dotenv_values(path)
    with path.open() as stream:
        single_quoted = {
            binding.key
            for binding in parse_stream(stream)
            if binding.key and _SINGLE_QUOTED.match(binding.original.string)
        }
    return {
        name: literal[name] if name in single_quoted else value for name, value in expanded.items() if value is not None
    }


_SINGLE_QUOTED = re.compile(r"\s*(?:export\s+)?[^=]*=\s*'")


def resolve(environ: dict[str, str] | None = None, dotenv: Path = DOTENV_FILE) -> dict[str, str]:
    """Every setting's value: environment, then `.env`, then the default (also for an empty value,
    as `${NAME:-default}` in docker-compose.yml)."""
    environ = dict(os.environ if environ is None else environ)
    from_file = read_dotenv(dotenv)
    return {s.name: environ.get(s.name, from_file.get(s.name, s.default)) or s.default for s in SETTINGS}


class SettingError(ValueError):
    """A setting has a value the lab cannot use."""


@dataclass(frozen=True)
class LabConfig:
    """Resolved settings plus the addresses and folders derived from them."""

    values: dict[str, str]

    @classmethod
    def load(cls, environ: dict[str, str] | None = None, dotenv: Path = DOTENV_FILE) -> LabConfig:
        config = cls(resolve(environ, dotenv))
        config.validate()
        return config

    def __getitem__(self, name: str) -> str:
        if name not in _BY_NAME:
            raise KeyError(f"{name} is not a lab setting")
        return self.values[name]

    def port(self, name: str) -> int:
        return int(self[name])

    def validate(self) -> None:
        for name in PORT_SETTINGS:
            value = self[name]
            if not value.isdigit() or not 0 < int(value) < 65536:
                raise SettingError(
                    f"{name}={value!r} is not a port number (1-65535). Fix it in your environment or .env."
                )
        for name in ("DASK_WORKERS", "DASK_WORKER_THREADS"):
            value = self[name]
            if not value.isdigit() or int(value) < 1:
                raise SettingError(f"{name}={value!r} must be a whole number of at least 1.")
        beat, crashed_after = self["LAB_HEARTBEAT_SECONDS"], self["LAB_CRASHED_AFTER_SECONDS"]
        if not beat.isdigit() or int(beat) < 30:
            raise SettingError(
                f"LAB_HEARTBEAT_SECONDS={beat!r} must be a whole number of seconds, at least 30 (Prefect's minimum)."
            )
        if not crashed_after.isdigit() or int(crashed_after) <= int(beat):
            raise SettingError(
                f"LAB_CRASHED_AFTER_SECONDS={crashed_after!r} must be a whole number of seconds above "
                f"LAB_HEARTBEAT_SECONDS ({beat}): otherwise a healthy run would be marked CRASHED."
            )
        ports = [self[n] for n in PORT_SETTINGS]
        if len(set(ports)) != len(ports):
            raise SettingError(f"{', '.join(PORT_SETTINGS)} must all differ (got {', '.join(ports)}).")

    # --- addresses, as a process on this machine reaches them ---------------------------
    @property
    def local_host(self) -> str:
        bind = self["LAB_BIND_ADDRESS"]
        return "127.0.0.1" if bind in ("0.0.0.0", "", "::") else bind

    @property
    def api_url(self) -> str:
        return f"http://{self.local_host}:{self['PREFECT_PORT']}/api"

    @property
    def ui_url(self) -> str:
        # What a learner opens in the browser; the UI calls the API at ui_api_url.
        return f"http://localhost:{self['PREFECT_PORT']}"

    @property
    def ui_api_url(self) -> str:
        return f"{self.ui_url}/api"

    @property
    def scheduler_address(self) -> str:
        return f"tcp://{self.local_host}:{self['DASK_SCHEDULER_PORT']}"

    @property
    def dashboard_url(self) -> str:
        return f"http://localhost:{self['DASK_DASHBOARD_PORT']}/status"

    @property
    def dashboard_api_url(self) -> str:
        return f"http://{self.local_host}:{self['DASK_DASHBOARD_PORT']}"

    @property
    def upstream_url(self) -> str:
        return f"http://localhost:{self['UPSTREAM_PORT']}"

    @property
    def inbox_url(self) -> str:
        return f"http://localhost:{self['INBOX_PORT']}"

    # --- the embedded lab's state folder -------------------------------------------------
    @property
    def home(self) -> Path:
        path = Path(self["LAB_HOME"]).expanduser()
        return path if path.is_absolute() else REPO_ROOT / path

    @property
    def prefect_home(self) -> Path:
        return self.home / "prefect"

    @property
    def results_dir(self) -> Path:
        return self.home / "results"

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse" / "warehouse.duckdb"

    @property
    def airbyte_venv(self) -> Path:
        path = Path(self["LAB_AIRBYTE_VENV"]).expanduser()
        return path if path.is_absolute() else REPO_ROOT / path

    @property
    def airbyte_python(self) -> Path:
        return self.airbyte_venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def mode_file(self) -> Path:
        """Which lab `./lab up` started last ("embedded" or "docker"); gone after `down`."""
        return self.run_dir / "mode"

    @property
    def docker_lab_is_up(self) -> bool:
        return self.mode_file.exists() and self.mode_file.read_text().strip() == "docker"


def env_example() -> str:
    """The text of `.env.example`, generated from SETTINGS (`python -m workshop_lab settings`)."""
    lines = [
        "# Settings of the Workflow Orchestration Lab. Copy to .env and change what you need:",
        "#   cp .env.example .env",
        "# Both `./lab up` (embedded) and `docker compose up` read .env; the environment wins over it.",
        "# .env is git-ignored: put secrets there, never in a tracked file.",
        "# Generated from workshop_lab/stack/settings.py (python -m workshop_lab settings > .env.example).",
        "",
    ]
    for s in SETTINGS:
        where = {"both": "", "compose": " [compose only]", "embedded": " [embedded only]"}[s.scope]
        lines.append(f"# {s.meaning}{where}")
        lines.append(f"{s.name}={s.default}")
        lines.append("")
    return "\n".join(lines)
