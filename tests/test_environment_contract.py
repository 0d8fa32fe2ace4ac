"""One environment contract for both labs: docker-compose.yml and workshop_lab/stack/services.py
start the same processes with the same environment and the same commands.

For every compose service that runs a lab process, the environment it gets (`x-lab-env` merged
with its own `environment:`) and the embedded twin's (`lab_environment` plus the service's
`extra_env`) have the same names, in both directions, and the same values; their commands have
the same program, the same options and the same option values. Where the two may differ, because
a value is an address (a service name against 127.0.0.1, a container path against a host path) or
because one lab needs something the other does not, the difference is named below with why; an
exception that no longer matches a difference fails too, so the list cannot outlive its reason.

Compose is read as YAML (no Docker needed) and `${NAME:-default}` is resolved with the lab's own
settings (workshop_lab/stack/settings.py): once with every default, once with every setting
changed, so that a value both labs merely happen to share by default does not pass for wiring.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from workshop_lab.stack.services import BIN, embedded_services, lab_environment
from workshop_lab.stack.settings import COMPOSE_FILE, REPO_ROOT, SETTINGS, LabConfig, resolve

COMPOSE = yaml.safe_load(COMPOSE_FILE.read_text())  # PyYAML merges `<<: *lab-env` as Compose does
# Names a compose address may use as a host: this file's services and the included Airbyte profile's.
COMPOSE_HOSTS = set(COMPOSE["services"]) | set(
    yaml.safe_load((REPO_ROOT / "airbyte" / "platform" / "compose.yaml").read_text())["services"]
)

# Each compose service that runs a lab process, and its embedded twin (compose's dask-worker is
# one service with DASK_WORKERS replicas; the embedded lab starts dask-worker-1..N).
EMBEDDED_TWIN = {
    "prefect-server": "prefect-server",
    "setup": "setup",
    "prefect-worker": "prefect-worker",
    "dask-scheduler": "dask-scheduler",
    "dask-worker": "dask-worker-1",
    "upstream": "upstream",
    "inbox": "inbox",
}
COMPOSE_ONLY_SERVICES = {
    "postgres": "Prefect's database: the embedded server keeps SQLite under LAB_HOME, or uses LAB_DATABASE_URL",
    "packaged-worker": "course section 9 (profile packaging): a worker inside the flows image; the embedded lab builds no images",
}

# ---- named exceptions: the environment --------------------------------------------------------
# Variables whose values are addresses: compared by name always, by shape only (a URL's scheme and
# path, with a compose service as its host; a path's last part), never by value.
ADDRESS_VARIABLES = {
    "PREFECT_API_URL": "the server: prefect-server:4200 in Docker, 127.0.0.1:PREFECT_PORT here",
    "DASK_SCHEDULER_ADDRESS": "the scheduler: dask-scheduler:8786 in Docker, 127.0.0.1:DASK_SCHEDULER_PORT here",
    "LAB_UPSTREAM_URL": "the upstream: upstream:8700 in Docker, 127.0.0.1:UPSTREAM_PORT here",
    "LAB_INBOX_URL": "the inbox: inbox:8701 in Docker, 127.0.0.1:INBOX_PORT here",
    "AIRBYTE_URL": "the Airbyte platform: its proxy service in Docker, 127.0.0.1:AIRBYTE_PORT here",
    "PREFECT_LOCAL_STORAGE_PATH": "task results: the results volume in Docker, under LAB_HOME here",
    "LAB_WAREHOUSE_PATH": "the warehouse: the warehouse volume in Docker, under LAB_HOME here",
    "LAB_FLOWS_DIR": "flows/: mounted at /opt/lab/flows in Docker, the repo's here",
    "LAB_AIRBYTE_PYTHON": "the Airbyte environment: the image's /opt/airbyte-venv in Docker, LAB_AIRBYTE_VENV here",
    "LAB_AIRBYTE_DIR": "airbyte/: mounted at /opt/lab/airbyte in Docker, the repo's here",
    "LAB_DBT_PROJECT_DIR": "dbt_project/: mounted at /opt/lab/dbt_project in Docker, the repo's here",
    "INBOX_FILE": "the inbox's messages: the inbox volume in Docker, under LAB_HOME here",
    "PREFECT_SERVER_DATABASE_CONNECTION_URL": "the database: the postgres service in Docker, LAB_DATABASE_URL here",
}
# Variables one lab sets and the other does not: (compose service or "*" for all, name) -> why.
EMBEDDED_ONLY_VARIABLES = {
    ("*", "PREFECT_HOME"): "a host folder under LAB_HOME; in Docker the image sets it (images/lab/Dockerfile)",
    (
        "*",
        "LAB_INSTANCE",
    ): "the embedded supervisor's marker: `./lab down` finds stray processes by it (Docker has containers)",
}
COMPOSE_ONLY_VARIABLES = {
    (
        "prefect-server",
        "PREFECT_SERVER_DATABASE_CONNECTION_URL",
    ): "always the postgres service in Docker; the embedded server sets it only for LAB_DATABASE_URL (else SQLite)",
    (
        "dask-worker",
        "LAB_LOOPBACK_FORWARDS",
    ): "containers only: forwards the host's loopback ports a shell's flow hands its tasks (workshop_lab/stack/dask_loopback.py)",
}

# ---- named exceptions: the commands -----------------------------------------------------------
# Options whose values are addresses (0.0.0.0 and container ports there; LAB_BIND_ADDRESS, the
# host ports and host folders here): compared by name, not by value.
ADDRESS_OPTIONS = {"--host", "--port", "--dashboard-address", "--local-directory"}
# Options one lab's command has and the other's does not: (compose service, option) -> why. The
# embedded lab starts `prefect` through workshop_lab/stack/launch.py; its options read `launch ...`.
EMBEDDED_ONLY_OPTIONS = {
    (
        "prefect-server",
        "launch --seed-database",
    ): "a fresh SQLite database starts from the migrated template; in Docker, postgres' initdb loads it",
    (
        "prefect-worker",
        "launch --after-prefect-server",
    ): "imports Prefect while the server starts, then waits for it; in Docker, depends_on (service_healthy) waits",
    ("dask-worker", "--name"): "one process per worker, named like its log; compose's replicas share one command",
    ("dask-worker", "--host"): "binds to loopback on the laptop; a container listens on its own address",
    (
        "dask-worker",
        "--no-dashboard",
    ): "the embedded health check asks the scheduler; Docker's reads the worker's /health",
}
COMPOSE_ONLY_OPTIONS = {
    (
        "prefect-worker",
        "--with-healthcheck",
    ): "serves /health on port 8080 of every address for Docker's healthcheck; on a laptop that port would leave "
    "LAB_BIND_ADDRESS and collide between labs, so the embedded check asks the server (services.py)",
    ("dask-worker", "--dashboard-address"): "the worker's /health on :8789, for Docker's healthcheck",
    ("dask-worker", "--preload"): "dask_loopback: only a container needs the host's loopback ports forwarded",
}


# ---- the two labs, read ---------------------------------------------------------------------
def changed(setting) -> str:
    """Another valid value for every setting: numbers one up (ports stay distinct), words marked."""
    if setting.name == "LAB_DATABASE_URL":  # a Postgres elsewhere, with the database compose's would have
        return "postgresql+asyncpg://learner:secret@db.example:5432/postgres_db-changed"
    return str(int(setting.default) + 1) if setting.default.isdigit() else f"{setting.name.lower()}-changed"


SCENARIOS = {
    "defaults": resolve({}, dotenv=Path("/nonexistent/.env")),
    "every-setting-changed": {s.name: changed(s) for s in SETTINGS},
}


def interpolate(value, settings: dict[str, str]) -> str:
    """Compose's `${NAME:-default}` (also for an empty value) and `$$`, with the lab's settings."""
    text = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: settings[m.group(1)] or m.group(2), str(value))
    assert "${" not in text, f"{value!r}: only ${{NAME:-default}} is resolved here"
    return text.replace("$$", "$")


def compose_environment(service: str, settings: dict[str, str]) -> dict[str, str]:
    return {
        name: interpolate(value, settings)
        for name, value in (COMPOSE["services"][service].get("environment") or {}).items()
    }


def compose_command(service: str, settings: dict[str, str]) -> list[str]:
    return [interpolate(word, settings) for word in COMPOSE["services"][service]["command"]]


def embedded(settings: dict[str, str]) -> dict[str, object]:
    config = LabConfig(settings)
    return {service.name: (service, config) for service in embedded_services(config)}


def embedded_environment(service, config) -> dict[str, str]:
    return {**lab_environment(config), **service.extra_env}


def command_parts(words: list[str]) -> tuple[list[str], dict[str, str | None]]:
    """A command as its program words and its options (`--name value`, `--name=value` or a flag)."""
    if words[0] == sys.executable and words[1:3] == ["-m", "workshop_lab.stack.launch"]:
        split = words.index("--")
        launcher = {f"launch {option}": None for option in words[3:split]}
        program, options = command_parts(["prefect", *words[split + 1 :]])
        return program, {**launcher, **options}
    if words[0] == sys.executable:
        words = ["python", *words[1:]]
    elif Path(words[0]).parent == BIN:
        words = [Path(words[0]).name, *words[1:]]
    program = words[:3] if words[:2] == ["python", "-m"] else []  # `python -m MODULE` is the program
    words = words[len(program) :]
    while words and not words[0].startswith("-"):
        program.append(words.pop(0))
    options: dict[str, str | None] = {}
    while words:
        option = words.pop(0)
        assert option.startswith("--"), f"a positional argument after the options: {option!r}"
        name, equals, value = option.partition("=")
        if not equals:
            value = words.pop(0) if words and not words[0].startswith("-") else None
        options[name] = value
    return program, options


def address_shape_differs(compose_value: str, embedded_value: str) -> str | None:
    """Why two addresses are not the same thing seen from two places, or None."""
    if "://" in compose_value:
        ours, theirs = urlsplit(compose_value), urlsplit(embedded_value)
        if ours.hostname not in COMPOSE_HOSTS:
            return f"{compose_value!r}: {ours.hostname!r} is no compose service"
        if (ours.scheme, ours.path) != (theirs.scheme, theirs.path):
            return f"{compose_value!r} and {embedded_value!r}: another scheme or path"
        return None
    if not compose_value.startswith("/") or not Path(embedded_value).is_absolute():
        return f"{compose_value!r} and {embedded_value!r}: not two absolute paths"
    if Path(compose_value).name != Path(embedded_value).name:
        return f"{compose_value!r} and {embedded_value!r}: not the same file or folder"
    return None


def one_sided(exceptions: dict, service: str, name: str) -> tuple | None:
    for key in ((service, name), ("*", name)):
        if key in exceptions:
            return key
    return None


def differences(settings: dict[str, str]) -> tuple[list[str], set]:
    """Every difference between the two labs no exception names, and the exceptions that applied."""
    problems: list[str] = []
    used: set = set()
    twins = embedded(settings)
    for service, twin in EMBEDDED_TWIN.items():
        embedded_service, config = twins[twin]
        # The environment, both ways.
        ours, theirs = compose_environment(service, settings), embedded_environment(embedded_service, config)
        for name in sorted(set(ours) | set(theirs)):
            if name not in theirs:
                key = one_sided(COMPOSE_ONLY_VARIABLES, service, name)
                problems += [] if key else [f"{service}: {name} is set by docker-compose.yml only"]
                used.add(("compose-only variable", key))
            elif name not in ours:
                key = one_sided(EMBEDDED_ONLY_VARIABLES, service, name)
                problems += [] if key else [f"{service}: {name} is set by the embedded lab only (services.py)"]
                used.add(("embedded-only variable", key))
            elif name in ADDRESS_VARIABLES:
                if ours[name] != theirs[name]:
                    used.add(("address variable", name))
                    why = address_shape_differs(ours[name], theirs[name])
                    problems += [f"{service}: {name}: {why}"] if why else []
            elif ours[name] != theirs[name]:
                problems.append(f"{service}: {name} is {ours[name]!r} in docker-compose.yml, {theirs[name]!r} embedded")
        # The command: program and options both ways; option values where they are not addresses.
        (our_program, our_options) = command_parts(compose_command(service, settings))
        (their_program, their_options) = command_parts(embedded_service.command)
        if len(our_program) != len(their_program):
            problems.append(f"{service}: runs {our_program} in docker-compose.yml, {their_program} embedded")
        for ours_word, theirs_word in zip(our_program, their_program, strict=False):
            if "://" in ours_word:
                used.add(("address option", "a positional address"))
                why = address_shape_differs(ours_word, theirs_word)
                problems += [f"{service}: {why}"] if why else []
            elif ours_word != theirs_word:
                problems.append(f"{service}: runs {our_program} in docker-compose.yml, {their_program} embedded")
        for option in sorted(set(our_options) | set(their_options)):
            if option not in their_options:
                key = (service, option) if (service, option) in COMPOSE_ONLY_OPTIONS else None
                problems += [] if key else [f"{service}: {option} is in docker-compose.yml's command only"]
                used.add(("compose-only option", key))
            elif option not in our_options:
                key = (service, option) if (service, option) in EMBEDDED_ONLY_OPTIONS else None
                problems += [] if key else [f"{service}: {option} is in the embedded command only (services.py)"]
                used.add(("embedded-only option", key))
            elif option in ADDRESS_OPTIONS:
                used.add(("address option", option)) if our_options[option] != their_options[option] else None
            elif our_options[option] != their_options[option]:
                problems.append(
                    f"{service}: {option} is {our_options[option]!r} in docker-compose.yml, "
                    f"{their_options[option]!r} embedded"
                )
    return problems, used


# ---- the tests ------------------------------------------------------------------------------
def test_every_lab_process_has_a_twin_on_the_other_lab():
    assert set(COMPOSE["services"]) == set(EMBEDDED_TWIN) | set(COMPOSE_ONLY_SERVICES), (
        "a compose service without an embedded twin: add it to services.py, or name why in COMPOSE_ONLY_SERVICES"
    )
    settings = SCENARIOS["every-setting-changed"]
    workers = [f"dask-worker-{n}" for n in range(1, int(settings["DASK_WORKERS"]) + 1)]
    assert sorted(embedded(settings)) == sorted({*EMBEDDED_TWIN.values(), *workers}), (
        "an embedded service without a compose twin"
    )


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_both_labs_give_each_process_the_same_environment_and_command(scenario):
    """Names always, values where they are not addresses, in both directions."""
    problems, _ = differences(SCENARIOS[scenario])
    assert not problems, (
        "the two labs disagree (fix docker-compose.yml or services.py, or name why here):\n  " + "\n  ".join(problems)
    )


def test_every_named_exception_is_still_needed():
    used = set().union(*(differences(settings)[1] for settings in SCENARIOS.values()))
    named = {
        *(("address variable", name) for name in ADDRESS_VARIABLES),
        *(("embedded-only variable", key) for key in EMBEDDED_ONLY_VARIABLES),
        *(("compose-only variable", key) for key in COMPOSE_ONLY_VARIABLES),
        *(("address option", option) for option in ADDRESS_OPTIONS),
        ("address option", "a positional address"),
        *(("embedded-only option", key) for key in EMBEDDED_ONLY_OPTIONS),
        *(("compose-only option", key) for key in COMPOSE_ONLY_OPTIONS),
    }
    assert named - used == set(), "these exceptions match no difference any more: remove them"


def test_every_lab_process_gets_every_shared_setting_it_passes_on():
    """The settings both labs hand to processes reach every one of them: a setting that only some
    processes get is a setting a flow sees or not depending on where its task runs."""
    settings = SCENARIOS["every-setting-changed"]
    for name in ("LAB_PREFECT_SPEEDUPS_STRICT", "AIRBYTE_CLIENT_ID", "AIRBYTE_CLIENT_SECRET", "SLACK_WEBHOOK_URL"):
        for service, twin in EMBEDDED_TWIN.items():
            embedded_service, config = embedded(settings)[twin]
            assert compose_environment(service, settings).get(name) == settings[name], f"compose {service}: {name}"
            assert embedded_environment(embedded_service, config).get(name) == settings[name], (
                f"embedded {twin}: {name}"
            )


def test_the_embedded_elt_follows_lab_airbyte_venv():
    """flows/13_elt.py runs the connector with LAB_AIRBYTE_PYTHON: the embedded lab derives it from
    LAB_AIRBYTE_VENV, the same folder ./lab builds (LabConfig.airbyte_venv)."""
    settings = {**SCENARIOS["defaults"], "LAB_AIRBYTE_VENV": "/opt/elsewhere/airbyte-venv"}
    env = lab_environment(LabConfig(settings))
    assert Path(env["LAB_AIRBYTE_PYTHON"]).parent.parent == Path("/opt/elsewhere/airbyte-venv")
    assert (
        Path(env["LAB_AIRBYTE_DIR"]) == REPO_ROOT / "airbyte"
        and Path(env["LAB_DBT_PROJECT_DIR"]) == REPO_ROOT / "dbt_project"
    )
