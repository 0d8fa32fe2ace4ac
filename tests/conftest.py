"""Fixtures that start real labs: the embedded one (local processes) and the Docker Compose one.

Each lab a test starts gets its own free ports and its own state (LAB_HOME, or a compose project
name), so the suite never touches a lab the learner has running, and two labs can run at once.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab_api import LabHandle
from workshop_lab.stack.compose import docker_engine
from workshop_lab.stack.settings import PORT_SETTINGS, REPO_ROOT
from workshop_lab.stack.shell import without_shell

# The lab's venv points every process at the learner's running lab (workshop_lab/stack/shell.py); the
# suite starts labs of its own, so neither this process nor its children take those addresses.
_environ = without_shell(dict(os.environ))
os.environ.clear()
os.environ.update(_environ)

# The order the suite runs in, one lab at a time (tests/suite_plan.py).
pytest_plugins = ["tests.suite_plan"]


def suite_plan():
    return sys.modules["tests.suite_plan"]  # loaded by pytest as the plugin above (so its asserts are rewritten)


REQUIRE_DOCKER = os.environ.get("LAB_REQUIRE_DOCKER") == "1"
CHROMIUM = os.environ.get("LAB_CHROMIUM", "/usr/bin/chromium")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Settings of every lab the tests start, beside its ports. A run is marked CRASHED 45 s after its
# last heartbeat (a learner's lab: 75 s), so that tests/test_recovery.py waits less; still one and
# a half of Prefect's 30 s heartbeats, so that no healthy run of the suite is marked CRASHED.
TEST_LAB_SETTINGS = {"LAB_CRASHED_AFTER_SECONDS": "45"}


def lab_ports() -> dict[str, str]:
    return {name: str(free_port()) for name in PORT_SETTINGS}


def need(condition: bool, reason: str, required: bool) -> None:
    """Skip with a reason, or fail where the environment promised the thing (CI)."""
    if condition:
        return
    if required:
        pytest.fail(f"{reason} — and this run requires it (LAB_REQUIRE_DOCKER=1)")
    pytest.skip(reason)


def pytest_collection_finish(session) -> None:
    """The lab image builds while the tests before the Docker lab's run (tests/suite_plan.py)."""
    if suite_plan().compose_tests_selected() and docker_engine()[0] and not session.config.option.collectonly:
        suite_plan().start_image_build(
            REPO_ROOT, Path(session.config._tmp_path_factory.getbasetemp()) / "lab-image-build.log"
        )


@pytest.fixture(scope="session")
def docker_available() -> None:
    ok, reason = docker_engine()
    need(ok, f"no usable Docker engine: {reason}", REQUIRE_DOCKER)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    found = shutil.which(CHROMIUM) or shutil.which("chromium")
    need(found is not None, f"no Chromium at {CHROMIUM} (apt-get install chromium)", REQUIRE_DOCKER)
    return found


def run_command(
    command: list[str],
    what: str,
    check: bool,
    timeout: float,
    env: dict[str, str] | None = None,
    diagnostics=lambda: "",
) -> subprocess.CompletedProcess:
    """Run a lab command from the repo root; with `check`, a non-zero exit fails the test with its output."""
    result = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{what} exited {result.returncode}\n{result.stdout}\n{result.stderr}\n{diagnostics()}")
    return result


# --- the embedded lab ------------------------------------------------------------------------
class EmbeddedLab(LabHandle):
    """A real `./lab` in a temporary state folder, driven through its CLI like a learner would."""

    def __init__(self, home: Path):
        self.env = {**os.environ, "LAB_HOME": str(home), **lab_ports(), **TEST_LAB_SETTINGS}
        self.env.pop("LAB_INSTANCE", None)
        self.home = home
        super().__init__(self.env)

    def cli(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        return run_command(
            [sys.executable, "-m", "workshop_lab", *args],
            f"./lab {' '.join(args)}",
            check,
            timeout,
            env=self.env,
            diagnostics=lambda: self.cli("logs", "-n", "40", check=False).stdout,
        )

    def processes(self) -> list[str]:
        """Every live process that carries this lab's marker (what `down` must leave at zero)."""
        import psutil

        found = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            try:
                if proc.environ().get("LAB_INSTANCE") == str(self.home) and proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(f"{proc.pid} {' '.join(proc.info['cmdline'] or [])[:120]}")
            except psutil.Error:
                continue
        return found


@pytest.fixture(scope="session")
def embedded_lab(tmp_path_factory) -> Iterator[EmbeddedLab]:
    lab = EmbeddedLab(tmp_path_factory.mktemp("embedded-lab"))
    lab.up_output = lab.cli("up").stdout
    suite_plan().stop_when_done(suite_plan().EMBEDDED, lambda: lab.cli("down", check=False))
    try:
        yield lab
    finally:
        lab.cli("down", check=False)


@pytest.fixture
def fresh_embedded_lab(tmp_path) -> Iterator[EmbeddedLab]:
    lab = EmbeddedLab(tmp_path / "lab")
    try:
        yield lab
    finally:
        lab.cli("down", check=False)


# --- the compose lab -------------------------------------------------------------------------
class ComposeLab(LabHandle):
    """The real docker-compose.yml under testcontainers, on free host ports, as its own project."""

    def __init__(self, workdir: Path):
        from testcontainers.compose import DockerCompose

        self.ports = lab_ports()
        self.project = f"labtest-{uuid.uuid4().hex[:8]}"
        self.env_file = workdir / "compose.env"
        self.env_file.write_text(
            "".join(
                f"{k}={v}\n"
                for k, v in {"COMPOSE_PROJECT_NAME": self.project, **self.ports, **TEST_LAB_SETTINGS}.items()
            )
        )
        self.compose = DockerCompose(
            context=REPO_ROOT,
            compose_file_name="docker-compose.yml",
            build=True,
            wait=True,
            env_file=str(self.env_file),
        )
        super().__init__(self.ports)

    def run(self, *args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
        """`docker compose ARGS` on this project."""
        return run_command(
            [*self.compose.compose_command_property, *args], f"docker compose {' '.join(args)}", check, timeout
        )

    def diagnostics(self) -> str:
        parts = []
        for args in (("config",), ("ps", "--all"), ("logs", "--no-color", "--tail", "80")):
            result = self.run(*args, check=False)
            parts.append(f"===== docker compose {' '.join(args)} =====\n{result.stdout}{result.stderr}")
        return "\n".join(parts)


@pytest.fixture(scope="session")
def compose_lab(docker_available, tmp_path_factory, request) -> Iterator[ComposeLab]:
    lab = ComposeLab(tmp_path_factory.mktemp("compose-lab"))
    failures_before = request.session.testsfailed
    suite_plan().wait_for_image_build()
    try:
        lab.compose.start()
    except Exception:
        print(lab.diagnostics())
        lab.compose.stop(down=True)
        raise
    try:
        yield lab
    finally:
        if request.session.testsfailed > failures_before:
            print(lab.diagnostics())
        lab.compose.stop(down=True)
