"""The lab's configuration keeps its promises: one definition of each setting, mirrored by the
compose file and .env.example; a valid compose file for every profile; loopback-only ports;
no Docker socket; a non-root image."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import re
import subprocess

import pytest

from workshop_lab.stack.compose import compose_command
from workshop_lab.stack.settings import COMPOSE_FILE, REPO_ROOT, SETTINGS, env_example, read_dotenv, resolve

COMPOSE_TEXT = COMPOSE_FILE.read_text()
# The Airbyte platform's profile lives in its own file, included by docker-compose.yml.
AIRBYTE_COMPOSE_TEXT = (REPO_ROOT / "airbyte" / "platform" / "compose.yaml").read_text()
# The platform's internals (its version, its database password, volume names) are its own.
AIRBYTE_INTERNAL = {
    "AIRBYTE_VERSION",
    "AIRBYTE_DB_PASSWORD",
    "AIRBYTE_WORKSPACE_VOLUME",
    "AIRBYTE_LOCAL_VOLUME",
    "AIRBYTE_TRACKING_STRATEGY",
    "DOCKER_SOCKET",
}
COMPOSE_DEFAULTS = [
    (name, default)
    for name, default in re.findall(r"\$\{(\w+):-([^}]*)\}", COMPOSE_TEXT + AIRBYTE_COMPOSE_TEXT)
    if name not in AIRBYTE_INTERNAL
]
# The one service allowed near the Docker socket: the Airbyte platform's relay, in an opt-in profile,
# because the platform starts each connector as a container (docs/airbyte-platform.md).
SOCKET_EXCEPTION = "airbyte-docker-proxy"


def test_env_example_is_generated_from_the_settings():
    assert (REPO_ROOT / ".env.example").read_text() == env_example(), "regenerate: ./lab settings > .env.example"


def test_compose_defaults_are_the_settings_defaults():
    defaults = {s.name: s.default for s in SETTINGS}
    assert COMPOSE_DEFAULTS, "the compose file reads no settings?"
    for name, default in COMPOSE_DEFAULTS:
        assert name in defaults, (
            f"docker-compose.yml reads ${{{name}}}, which workshop_lab/stack/settings.py does not define"
        )
        assert default == defaults[name], f"{name}: compose default {default!r} != settings default {defaults[name]!r}"


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.scope != "embedded"], ids=lambda s: s.name)
def test_compose_reads_and_documents_every_shared_setting(setting):
    assert setting.name in {name for name, _ in COMPOSE_DEFAULTS}, f"docker-compose.yml ignores {setting.name}"
    header = COMPOSE_TEXT.split("\nname:")[0]
    assert re.search(rf"^#\s+{setting.name}\s+\[{re.escape(setting.default)}\]", header, re.M), (
        f"the compose header does not list {setting.name} [{setting.default}]"
    )


def test_environment_wins_over_dotenv_and_dotenv_over_defaults(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("PREFECT_PORT=4300\nDASK_WORKERS='3'\n")
    values = resolve({"PREFECT_PORT": "4400"}, dotenv)
    assert (
        values["PREFECT_PORT"] == "4400" and values["DASK_WORKERS"] == "3" and values["DASK_SCHEDULER_PORT"] == "8786"
    )


# Each line of a .env, what Docker Compose reads from it, and the rule of Compose's .env syntax
# (docs.docker.com/compose/how-tos/environment-variables/variable-interpolation/#env-file-syntax)
# that says so. The lab reads .env with python-dotenv (settings.read_dotenv), for ./lab too.
DOTENV_CASES = [
    (
        "PREFECT_PORT=4300 # 4200 is taken on this laptop",
        "4300",
        "unquoted value: an inline comment starts at a # preceded by a space",
    ),
    (
        "DASK_WORKER_MEMORY_LIMIT=2GiB#no-space",
        "2GiB#no-space",
        "unquoted value: a # not preceded by a space is part of the value",
    ),
    (
        'SLACK_WEBHOOK_URL="https://hooks.example/T0#channel # still the value" # a comment',
        "https://hooks.example/T0#channel # still the value",
        "double-quoted value: everything up to the closing quote, # included; a comment may follow it",
    ),
    (
        "SNOWFLAKE_PASSWORD='p#ss ${word}' # a comment",
        "p#ss ${word}",
        "single-quoted value: taken literally (no interpolation), # included",
    ),
    ("SNOWFLAKE_ROLE=", "", "VAR= is an empty string, not unset"),
]


@pytest.mark.parametrize(("line", "expected", "rule"), DOTENV_CASES, ids=[rule for _, _, rule in DOTENV_CASES])
def test_dotenv_is_read_the_way_compose_reads_it(tmp_path, line, expected, rule):
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"# the learner's settings\n{line}\n")
    name = line.partition("=")[0]
    assert read_dotenv(dotenv) == {name: expected}, rule


def test_dotenv_expands_variables_except_in_single_quotes(tmp_path):
    """Compose interpolates ${NAME} in unquoted and double-quoted values, not in single-quoted ones."""
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "SNOWFLAKE_USER=learner\nSNOWFLAKE_DATABASE=\"${SNOWFLAKE_USER}_db\"\nSNOWFLAKE_PASSWORD='${SNOWFLAKE_USER}'\n"
    )
    values = read_dotenv(dotenv)
    assert values["SNOWFLAKE_DATABASE"] == "learner_db" and values["SNOWFLAKE_PASSWORD"] == "${SNOWFLAKE_USER}"


def test_an_empty_setting_takes_its_default_as_compose_does(tmp_path):
    """docker-compose.yml reads every setting as ${NAME:-default}, which takes the default for an
    empty value as for an unset one: `SNOWFLAKE_SCHEMA=` in .env (or the environment) is ANALYTICS."""
    dotenv = tmp_path / ".env"
    dotenv.write_text("SNOWFLAKE_SCHEMA=\nPREFECT_PORT=4300\n")
    assert read_dotenv(dotenv)["SNOWFLAKE_SCHEMA"] == ""
    assert resolve({}, dotenv)["SNOWFLAKE_SCHEMA"] == "ANALYTICS"
    # An empty variable in the environment still wins over .env, and then takes the default.
    assert resolve({"PREFECT_PORT": ""}, dotenv)["PREFECT_PORT"] == "4200"


def test_lab_reads_its_settings_through_the_one_reader(monkeypatch):
    """The `lab` script (the system Python, before the venv exists) has no .env parser of its own:
    for the Airbyte environment it asks the venv's Python, i.e. settings.resolve."""
    loader = importlib.machinery.SourceFileLoader("lab_script", str(REPO_ROOT / "lab"))
    lab = importlib.util.module_from_spec(importlib.util.spec_from_loader("lab_script", loader))
    loader.exec_module(lab)
    monkeypatch.setenv("LAB_WITH_PYAIRBYTE", "1")
    monkeypatch.setenv("LAB_AIRBYTE_VENV", "elsewhere/airbyte-venv")
    assert lab.airbyte_settings() == {
        "LAB_WITH_PYAIRBYTE": "1",
        "airbyte_venv": str(REPO_ROOT / "elsewhere" / "airbyte-venv"),
    }


def compose_json(*profile_args: str) -> dict:
    result = subprocess.run(
        compose_command(*profile_args, "config", "--format", "json"), capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def profiles() -> list[str]:
    result = subprocess.run(compose_command("config", "--profiles"), capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.docker
def test_compose_config_is_valid_for_every_profile(docker_available):
    for profile in [None, *profiles()]:
        args = ("--profile", profile) if profile else ()
        result = subprocess.run(
            compose_command(*args, "config", "--quiet"), capture_output=True, text=True, cwd=REPO_ROOT
        )
        assert result.returncode == 0, f"profile {profile}: {result.stderr}"


@pytest.mark.docker
def test_every_published_port_binds_to_loopback_and_no_docker_socket(docker_available):
    config = compose_json("--profile", "*")
    published = 0
    for name, service in config["services"].items():
        for port in service.get("ports", []):
            published += 1
            assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port} beyond loopback"
        for volume in service.get("volumes", []):
            if name == SOCKET_EXCEPTION:
                assert service.get("profiles") == ["airbyte"], f"{name} must stay in the opt-in airbyte profile"
                continue
            assert "docker.sock" not in str(volume.get("source", "")), f"{name} mounts the Docker socket"
    assert published >= 3  # Prefect UI/API, Dask scheduler, Dask dashboard


@pytest.mark.docker
def test_lab_image_runs_as_non_root(compose_lab):
    image = compose_json()["services"]["prefect-server"]["image"]
    user = subprocess.run(
        ["docker", "image", "inspect", image, "--format", "{{.Config.User}}"], capture_output=True, text=True
    )
    assert user.returncode == 0, user.stderr
    assert user.stdout.strip() not in ("", "root", "0")
    uid = subprocess.run(["docker", "run", "--rm", image, "id", "-u"], capture_output=True, text=True)
    assert uid.stdout.strip() not in ("", "0"), uid


def test_compose_and_the_embedded_lab_give_processes_the_same_fixed_environment():
    """Values that are not settings but are the same in both labs: every process's Dask tick, and
    the Dask workers' own environment (workshop_lab/stack/services.py is the one definition)."""
    import yaml

    from workshop_lab.stack.services import DASK_TICK_INTERVAL, DASK_WORKER_ENV

    compose = yaml.safe_load(COMPOSE_TEXT)
    assert str(compose["x-lab-env"]["DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL"]) == DASK_TICK_INTERVAL
    worker_env = {name: str(value) for name, value in compose["services"]["dask-worker"]["environment"].items()}
    assert worker_env.items() >= DASK_WORKER_ENV.items(), "docker-compose.yml's dask-worker must set DASK_WORKER_ENV"
    scheduler_env = compose["services"]["dask-scheduler"].get("environment", {})
    assert not set(DASK_WORKER_ENV) & set(scheduler_env), "DASK_WORKER_ENV is for the workers only"
    from workshop_lab.stack.services import embedded_services
    from workshop_lab.stack.settings import LabConfig

    services = embedded_services(LabConfig.load())
    assert all(s.extra_env.items() >= DASK_WORKER_ENV.items() for s in services if s.name.startswith("dask-worker-"))
    assert not any(set(DASK_WORKER_ENV) & set(s.extra_env) for s in services if not s.name.startswith("dask-worker-"))


def test_both_labs_keep_the_scheduler_a_few_runs_ahead():
    """The server's scheduler look-ahead (SCHEDULER_LOOKAHEAD_ENV, one definition in
    workshop_lab/stack/services.py) is set on both labs' Prefect server, valid for Prefect, and small."""
    from datetime import timedelta

    import yaml
    from prefect.settings.models.server.services import ServerServicesSchedulerSettings

    from workshop_lab.stack.services import SCHEDULER_LOOKAHEAD_ENV, embedded_services
    from workshop_lab.stack.settings import LabConfig

    compose = yaml.safe_load(COMPOSE_TEXT)
    server_env = {name: str(value) for name, value in compose["services"]["prefect-server"]["environment"].items()}
    assert server_env.items() >= SCHEDULER_LOOKAHEAD_ENV.items(), (
        "docker-compose.yml's prefect-server must set SCHEDULER_LOOKAHEAD_ENV"
    )
    [embedded_server] = [s for s in embedded_services(LabConfig.load()) if s.name == "prefect-server"]
    assert embedded_server.extra_env.items() >= SCHEDULER_LOOKAHEAD_ENV.items()

    # Prefect reads these values (a duration must be ISO 8601: "300" makes every Prefect process fail).
    scheduler = ServerServicesSchedulerSettings(
        **{
            name.removeprefix("PREFECT_SERVER_SERVICES_SCHEDULER_").lower(): value
            for name, value in SCHEDULER_LOOKAHEAD_ENV.items()
        }
    )
    assert scheduler.min_scheduled_time <= timedelta(minutes=10) and scheduler.max_runs <= 10, scheduler
