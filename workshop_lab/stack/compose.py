"""Drive the Docker Compose lab with the same verbs as the embedded one (`./lab up --docker`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable

from workshop_lab.stack.settings import COMPOSE_FILE, REPO_ROOT, LabConfig
from workshop_lab.stack.supervisor import LabError, ServiceState


def compose_command(*args: str) -> list[str]:
    return ["docker", "compose", "--file", str(COMPOSE_FILE), "--project-directory", str(REPO_ROOT), *args]


def docker_engine() -> tuple[bool, str]:
    """Whether a Docker engine and Compose v2 answer, with a one-line reason."""
    if shutil.which("docker") is None:
        return False, "no `docker` command on PATH"
    info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if info.returncode != 0:
        return False, "the docker client cannot reach an engine: " + (
            info.stderr.strip().splitlines() or ["no answer"]
        )[-1]
    plugin = subprocess.run(["docker", "compose", "version", "--short"], capture_output=True, text=True)
    if plugin.returncode != 0:
        return False, f"Docker engine {info.stdout.strip()} has no Compose v2 plugin (`docker compose`)"
    return True, f"Docker engine {info.stdout.strip()}, Compose {plugin.stdout.strip()}"


def _require_docker() -> None:
    ok, reason = docker_engine()
    if not ok:
        raise LabError(
            f"The Docker lab needs a Docker engine with Compose v2: {reason}.\n"
            "Start Docker, or use the embedded lab, which needs no Docker: ./lab up"
        )


def up(config: LabConfig, say: Callable[[str], None] = print) -> float:
    _require_docker()
    say("Building the lab image and starting the compose stack (docker compose up --build --wait)")
    started = time.monotonic()
    result = subprocess.run(compose_command("up", "--build", "--wait"), cwd=REPO_ROOT)
    if result.returncode != 0:
        states = "\n".join(f"  {s.name:<15} {s.detail}" for s in status(config))
        raise LabError(
            f"docker compose up failed (exit {result.returncode}).\n{states}\n"
            "See what went wrong: ./lab logs --docker [service]"
        )
    return time.monotonic() - started


def _containers(all_states: bool = True) -> list[dict]:
    """`docker compose ps` rows: Name, Service, State, Health, ID..."""
    args = ("ps", "--all", "--format", "json") if all_states else ("ps", "--format", "json")
    result = subprocess.run(compose_command(*args), capture_output=True, text=True, cwd=REPO_ROOT)
    if result.returncode != 0:
        raise LabError(f"docker compose ps failed: {result.stderr.strip()}")
    text = result.stdout.strip()
    return (
        json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines() if line.strip()]
    )


def _restart_history(container_ids: list[str]) -> dict[str, dict]:
    """Each container's restart count and last exit, from `docker inspect` (keyed by full id).

    Docker resets State.ExitCode to 0 when it starts the container again: a running container's
    last exit is known only by its time (FinishedAt); while it is down or restarting, by its code too."""
    if not container_ids:
        return {}
    result = subprocess.run(["docker", "inspect", *container_ids], capture_output=True, text=True)
    if result.returncode != 0:
        return {}
    history = {}
    for container in json.loads(result.stdout):
        state = container.get("State", {})
        finished = state.get("FinishedAt", "")
        ever_exited = bool(finished) and not finished.startswith("0001-")
        history[container["Id"]] = {
            "restarts": container.get("RestartCount", 0),
            "last_exit": str(state.get("ExitCode")) if ever_exited and not state.get("Running") else None,
            "last_exit_at": finished if ever_exited else None,
        }
    return history


def status(config: LabConfig) -> list[ServiceState]:
    rows = _containers()
    history = _restart_history([row["ID"] for row in rows if row.get("ID")])
    urls = {
        "prefect-server": config.ui_url,
        "dask-scheduler": config.dashboard_url,
        "upstream": config.upstream_url,
        "inbox": config.inbox_url,
    }
    states = []
    for row in sorted(rows, key=lambda r: r.get("Name", "")):
        service, state, health = row.get("Service", "?"), row.get("State", "?"), row.get("Health", "")
        if service == "setup":
            continue
        # "restarting": Docker's restart policy is between two runs of a crashed container.
        healthy = state == "running" and health in ("healthy", "")
        past = next((h for full_id, h in history.items() if row.get("ID") and full_id.startswith(row["ID"])), {})
        states.append(
            ServiceState(
                row.get("Name", service),
                state in ("running", "restarting"),
                None,
                healthy,
                f"{state}{' (' + health + ')' if health else ''}",
                urls.get(service, ""),
                restarts=past.get("restarts", 0),
                last_exit=past.get("last_exit"),
                last_exit_at=past.get("last_exit_at"),
            )
        )
    return states


# Kills every process but PID 1 (tini, `init: true`); tini then exits 137 with its child, as the
# container would in a crash, and the restart policy (`restart: on-failure`) starts it again.
KILL_EVERY_PROCESS = "import os, signal; os.kill(-1, signal.SIGKILL)"


def kill(name: str) -> str:
    """`./lab chaos kill NAME` on the Docker lab: NAME is a service, or `service-N` for its Nth replica."""
    _require_docker()
    replicas: dict[str, int] = {}
    for row in _containers(all_states=False):
        if row.get("Service") not in (None, "setup"):
            replicas[row["Service"]] = replicas.get(row["Service"], 0) + 1
    service, index = name, 1
    base, _, number = name.rpartition("-")
    if name not in replicas and base in replicas and number.isdigit():
        service, index = base, int(number)
    if service not in replicas or not 1 <= index <= replicas[service]:
        valid = [
            n
            for s, count in sorted(replicas.items())
            for n in ([s] if count == 1 else [s, *(f"{s}-{i}" for i in range(1, count + 1))])
        ]
        raise LabError(
            f"No running service named {name!r} in the Docker lab. Services: {', '.join(valid) or 'none (./lab up --docker)'}"
        )
    result = subprocess.run(
        compose_command("exec", "-T", "--index", str(index), service, "python", "-c", KILL_EVERY_PROCESS),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    # The exec session dies with the container: 137 (or Docker's 1 for a lost session) is success.
    if result.returncode not in (0, 1, 137):
        raise LabError(
            f"docker compose exec {service} failed (exit {result.returncode}): "
            f"{(result.stderr.strip().splitlines() or ['no message'])[-1]}"
        )
    return f"{service} (replica {index})" if replicas[service] > 1 else service


def down(remove_volumes: bool = False) -> None:
    _require_docker()
    args = ["down", "--remove-orphans"] + (["--volumes"] if remove_volumes else [])
    if subprocess.run(compose_command(*args), cwd=REPO_ROOT).returncode != 0:
        raise LabError("docker compose down failed; see the messages above.")


def logs(service: str | None, follow: bool) -> None:
    args = ["logs", "--tail", "200"] + (["--follow"] if follow else []) + ([service] if service else [])
    subprocess.run(compose_command(*args), cwd=REPO_ROOT)
