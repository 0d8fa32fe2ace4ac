"""The learner's own loop, on both labs: a learner's shell reaches the running lab with nothing
exported (workshop_lab/stack/shell.py), and `./lab run` tells what happened in one line or a story.

Every command here is typed as the course writes it: the module 07 Secret command is read from the
module's own text, the scripts run with the lab's venv from the folder a learner would be in."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EmbeddedLab, lab_ports
from workshop_lab.stack.settings import FLOWS_DIR, REPO_ROOT

pytestmark = pytest.mark.stack

VENV_PYTHON = Path(sys.executable)
RUN_URL = re.compile(r"/runs/flow-run/([0-9a-f-]{36})")


@pytest.fixture(params=["embedded", "compose"])
def lab(request):
    return request.getfixturevalue(f"{request.param}_lab")


def learner_env(ports: dict[str, str], home: Path, docker: bool = False) -> dict[str, str]:
    """A new shell's environment: no Prefect, Dask or lab address exported, only the lab's port
    settings (as a learner's `.env` would hold them) so that it finds the lab under test. For the
    Docker lab, its state folder says so, as `./lab up --docker` leaves it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DASK_", "LAB_"))}
    if docker:
        (home / "run").mkdir(parents=True, exist_ok=True)
        (home / "run" / "mode").write_text("docker\n")
    return {**env, **ports, "LAB_HOME": str(home)}


def learner_env_for(lab, home: Path) -> dict[str, str]:
    docker = hasattr(lab, "compose")
    ports = lab.ports if docker else {k: lab.env[k] for k in lab_ports()}
    return learner_env(ports, home, docker=docker)


def module_command(module: str, starts_with: str) -> str:
    """The command a module's header tells the learner to type (the first line that starts so)."""
    text = ast.get_docstring(ast.parse((FLOWS_DIR / module).read_text()))
    [line, *_] = [ln.strip() for ln in text.splitlines() if ln.strip().startswith(starts_with)]
    return line


def test_a_flow_file_run_from_the_learners_shell_runs_on_the_labs_dask_workers(lab, tmp_path):
    env = learner_env_for(lab, tmp_path / "home")
    # From flows/, as a learner who opened the folder would; the module header's command is from the repo root.
    result = subprocess.run(
        [str(VENV_PYTHON), "00_hello_lab.py"], cwd=FLOWS_DIR, env=env, capture_output=True, text=True, timeout=180
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Connecting to an existing Dask cluster" in output, output[-3000:]
    [flow_run_id, *_] = RUN_URL.findall(output)
    run = lab.get(f"/flow_runs/{flow_run_id}")
    assert run["state"]["type"] == "COMPLETED", run["state"]
    rows = lab.table_artifact(flow_run_id, "hello-lab-workers")
    assert rows and {row["dask_worker"] for row in rows} <= set(lab.dask_workers()), rows


def test_module_07_as_written_secret_then_two_runs_give_a_cached_task(lab, tmp_path):
    env = learner_env_for(lab, tmp_path / "home")
    secret_command = module_command("07_caching_and_secrets.py", ".venv/bin/python -c")
    created = subprocess.run(
        secret_command, shell=True, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert created.returncode == 0, created.stderr[-2000:]
    blocks = lab.post("/block_documents/filter", {"block_documents": {"name": {"any_": ["upstream-api-token"]}}})
    assert [b["name"] for b in blocks] == ["upstream-api-token"], "the Secret went to another server"

    run_command = module_command("07_caching_and_secrets.py", "- `./lab run").split("`")[1]
    states = []
    for _ in range(2):
        result = subprocess.run(
            run_command, shell=True, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
        assert "COMPLETED after" in result.stdout
        [flow_run_id, *_] = RUN_URL.findall(result.stdout)
        [fetch] = [t for t in lab.task_runs(flow_run_id) if t["task_key"].startswith("fetch_customers_page")]
        states.append(fetch["state"]["name"])
    assert states[1] == "Cached", states


def test_a_learners_script_says_in_one_line_that_the_lab_is_down(tmp_path):
    ports = lab_ports()  # free ports: nothing listens there
    result = subprocess.run(
        [str(VENV_PYTHON), "flows/00_hello_lab.py"],
        cwd=REPO_ROOT,
        env=learner_env(ports, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "the lab is not running" in result.stderr and "./lab up" in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]


def test_lab_env_prints_the_labs_addresses_for_another_shell(tmp_path):
    lab = EmbeddedLab(tmp_path / "lab")
    lab.env.pop("LAB_SHELL", None)
    printed = lab.cli("env").stdout
    result = subprocess.run(
        ["bash", "-c", 'eval "$(cat)"; echo "$PREFECT_API_URL $DASK_SCHEDULER_ADDRESS"'],
        input=printed,
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"]},
    )
    assert result.stdout.split() == [
        f"http://127.0.0.1:{lab.env['PREFECT_PORT']}/api",
        f"tcp://127.0.0.1:{lab.env['DASK_SCHEDULER_PORT']}",
    ], printed


# --- ./lab run: one line for a mistake, the story of a run -----------------------------------------
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["nosuch/deployment"], "No deployment named nosuch/deployment"),
        (["nodash"], "'nodash' is not a deployment name: write FLOW/DEPLOYMENT."),
        (["parameters/parameters", "--param", "nosuch=1"], "parameters/parameters has no parameter 'nosuch'"),
        (["parameters/parameters", "--param", "hours=0"], "Validation failed for field 'hours'"),
        (["hello-lab/helo-lab"], "Did you mean hello-lab/hello-lab"),
        (["parameters"], "Did you mean parameters/parameters?"),
    ],
)
def test_lab_run_refuses_a_mistake_in_one_line(embedded_lab, args, expected):
    result = embedded_lab.cli("run", *args, check=False)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert expected in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stdout + result.stderr, (
        result.stderr
    )


def test_lab_run_shows_the_logs_and_why_a_run_failed(embedded_lab):
    result = embedded_lab.cli(
        "run", "caching-and-secrets/caching-and-secrets", "--param", "secret_block=no-such-block", check=False
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    out = result.stdout
    # The story while it ran: its states as they changed and its log lines as they came.
    assert out.count("  state: ") >= 2 and "Beginning flow run" in out, out
    assert "FAILED after" in out and "why: " in out and "No Secret block named 'no-such-block'" in out, out
    assert "hint: create the Secret block first" in out, out
    assert "Traceback" not in result.stderr, result.stderr


def test_lab_run_timeout_says_no_worker_polls_the_pool(embedded_lab):
    result = embedded_lab.cli("run", "docker-packaging/docker-packaging", "--timeout", "3", check=False)
    [flow_run_id, *_] = RUN_URL.findall(result.stdout + result.stderr)
    try:
        assert result.returncode == 2, (result.stdout, result.stderr)
        assert (
            "still SCHEDULED" in result.stderr and "no worker polls its work pool 'workshop-packaged'" in result.stderr
        ), result.stderr
    finally:  # leave no scheduled run behind for the tests that count runs
        embedded_lab.post(
            f"/flow_runs/{flow_run_id}/set_state", {"state": {"type": "CANCELLED", "name": "Cancelled"}, "force": True}
        )
