"""Drive the Docker Compose lab with the same verbs as the embedded one (`./lab up --docker`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable

from workshop_lab.settings import COMPOSE_FILE, REPO_ROOT, LabConfig
from workshop_lab.supervisor import LabError, ServiceState


def compose_command(*args: str) -> list[str]:
    return ["docker", "compose", "--file", str(COMPOSE_FILE), "--project-directory", str(REPO_ROOT), *args]


def docker_engine() -> tuple[bool, str]:
    """Whether a Docker engine and Compose v2 answer, with a one-line reason."""
    if shutil.which("docker") is None:
        return False, "no `docker` command on PATH"
    info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if info.returncode != 0:
        return False, "the docker client cannot reach an engine: " + (info.stderr.strip().splitlines() or ["no answer"])[-1]
    plugin = subprocess.run(["docker", "compose", "version", "--short"], capture_output=True, text=True)
    if plugin.returncode != 0:
        return False, f"Docker engine {info.stdout.strip()} has no Compose v2 plugin (`docker compose`)"
    return True, f"Docker engine {info.stdout.strip()}, Compose {plugin.stdout.strip()}"


def _require_docker() -> None:
    ok, reason = docker_engine()
    if not ok:
        raise LabError(f"The Docker lab needs a Docker engine with Compose v2: {reason}.\n"
                       "Start Docker, or use the embedded lab, which needs no Docker: ./lab up")


def up(config: LabConfig, say: Callable[[str], None] = print) -> float:
    _require_docker()
    say("Building the lab image and starting the compose stack (docker compose up --build --wait)")
    started = time.monotonic()
    result = subprocess.run(compose_command("up", "--build", "--wait"), cwd=REPO_ROOT)
    if result.returncode != 0:
        states = "\n".join(f"  {s.name:<15} {s.detail}" for s in status(config))
        raise LabError(f"docker compose up failed (exit {result.returncode}).\n{states}\n"
                       "See what went wrong: ./lab logs --docker [service]")
    return time.monotonic() - started


def status(config: LabConfig) -> list[ServiceState]:
    result = subprocess.run(compose_command("ps", "--all", "--format", "json"), capture_output=True, text=True, cwd=REPO_ROOT)
    if result.returncode != 0:
        raise LabError(f"docker compose ps failed: {result.stderr.strip()}")
    text = result.stdout.strip()
    rows = json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines() if line.strip()]
    urls = {"prefect-server": config.ui_url, "dask-scheduler": config.dashboard_url,
            "upstream": config.upstream_url, "inbox": config.inbox_url}
    states = []
    for row in sorted(rows, key=lambda r: r.get("Name", "")):
        service, state, health = row.get("Service", "?"), row.get("State", "?"), row.get("Health", "")
        if service == "setup":
            continue
        healthy = state == "running" and health in ("healthy", "")
        states.append(ServiceState(row.get("Name", service), state == "running", None, healthy,
                                   f"{state}{' (' + health + ')' if health else ''}", urls.get(service, "")))
    return states


def down(remove_volumes: bool = False) -> None:
    _require_docker()
    args = ["down", "--remove-orphans"] + (["--volumes"] if remove_volumes else [])
    if subprocess.run(compose_command(*args), cwd=REPO_ROOT).returncode != 0:
        raise LabError("docker compose down failed; see the messages above.")


def logs(service: str | None, follow: bool) -> None:
    args = ["logs", "--tail", "200"] + (["--follow"] if follow else []) + ([service] if service else [])
    subprocess.run(compose_command(*args), cwd=REPO_ROOT)
