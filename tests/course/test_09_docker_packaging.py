"""Module 09 (Docker and Python packaging) on a real Docker engine.

(a) images/flows/Dockerfile builds FROM the lab image; the image alone (no mount, no network) runs
    the flow, with lab_toolkit pip-installed into the venv and the flow code baked in at /opt/flows,
    as the non-root user. The lab image itself lacks lab_toolkit: the flows image is what adds it.
(b) On the compose lab with the `packaging` profile, the docker-packaging deployment runs on the
    `workshop-packaged` pool and COMPLETES in the packaged worker's container, with the code the
    image carries and the lab_toolkit version of flows/packaging/lab_toolkit/pyproject.toml.
"""

from __future__ import annotations

import os
import subprocess
import tomllib
import uuid

import pytest

from workshop_lab.stack.settings import FLOWS_DIR, REPO_ROOT

pytestmark = [pytest.mark.docker, pytest.mark.stack]

TOOLKIT_VERSION = tomllib.loads((FLOWS_DIR / "packaging/lab_toolkit/pyproject.toml").read_text())["project"]["version"]
# The tag docker-compose.yml builds the lab image under (it reads the same variable).
LAB_IMAGE = os.environ.get("LAB_IMAGE", "workflow-orchestration-lab:0.1.0")
IMAGE_CODE_DIR = "/opt/flows"
DEPLOYMENT = "docker-packaging/docker-packaging"
PACKAGED_POOL = "workshop-packaged"


def docker(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)


def markdown_facts(markdown: str) -> dict[str, str]:
    """The `| fact | value |` rows of the flow's report artifact."""
    rows = [line.strip().strip("|").split("|") for line in markdown.splitlines() if line.startswith("| ")]
    return {fact.strip(): value.strip() for fact, value in rows[1:]}


@pytest.fixture(scope="module")
def flows_image(compose_lab) -> str:
    """images/flows/Dockerfile built with plain `docker build`, FROM the lab image compose_lab built."""
    tag = f"workflow-orchestration-lab-flows:test-{uuid.uuid4().hex[:8]}"
    build = docker("build", "-f", "images/flows/Dockerfile", "--build-arg", f"LAB_IMAGE={LAB_IMAGE}", "-t", tag, ".")
    assert build.returncode == 0, f"docker build failed\n{build.stdout[-4000:]}\n{build.stderr[-4000:]}"
    yield tag
    docker("rmi", tag)


def test_the_flows_image_alone_runs_the_flow_with_the_installed_package(flows_image):
    # No network and no mount: only what the image carries. No PREFECT_API_URL: Prefect starts a
    # throwaway server inside the container (slow to start on a loaded machine: allow it time).
    run = docker(
        "run",
        "--rm",
        "--network",
        "none",
        "-e",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=180",
        "-e",
        "PREFECT_SERVER_ANALYTICS_ENABLED=false",
        flows_image,
        "python",
        f"{IMAGE_CODE_DIR}/09_docker_packaging.py",
        timeout=600,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert (
        f"lab_toolkit {TOOLKIT_VERSION} from /opt/venv/lib/python3.11/site-packages/lab_toolkit, "
        f"flow code from {IMAGE_CODE_DIR}, in container"
    ) in output, output[-4000:]
    assert "Finished in state Completed()" in output, output[-4000:]

    uid = docker("run", "--rm", flows_image, "id", "-u").stdout.strip()
    assert uid not in {"", "0"}, f"the flows image runs as uid {uid!r}: it must switch back to `lab`"


def test_the_lab_image_itself_does_not_carry_lab_toolkit(compose_lab):
    probe = docker("run", "--rm", LAB_IMAGE, "python", "-c", "import lab_toolkit")
    assert probe.returncode != 0 and "No module named 'lab_toolkit'" in probe.stderr, probe.stderr


def test_packaged_deployment_completes_in_the_packaged_worker_container(compose_lab):
    # Profile flags are global compose flags: compose_lab.run puts them before `up`.
    compose_lab.run("--profile", "packaging", "up", "--wait", "--build", "packaged-worker")
    try:
        try:
            compose_lab.deployment(DEPLOYMENT)
        except Exception as exc:  # a 404: flows/prefect.yaml has no docker-packaging entry
            pytest.fail(f"{DEPLOYMENT} is not deployed: add it to flows/prefect.yaml ({exc})")

        run = compose_lab.run_deployment(DEPLOYMENT, timeout=300)
        assert run["state"]["type"] == "COMPLETED", run["state"]
        assert run["work_pool_name"] == PACKAGED_POOL, run["work_pool_name"]

        artifacts = compose_lab.post(
            "/artifacts/filter",
            {"artifacts": {"flow_run_id": {"any_": [run["id"]]}, "key": {"any_": ["docker-packaging-report"]}}},
        )
        assert artifacts, f"flow run {run['id']} wrote no docker-packaging-report artifact"
        facts = markdown_facts(artifacts[0]["data"])

        # The package: the version of its pyproject.toml, installed by pip into the image's venv.
        assert facts["lab_toolkit_version"] == TOOLKIT_VERSION, facts
        assert facts["lab_toolkit_location"].startswith("/opt/venv/lib/"), facts
        assert facts["installed_by_pip"] == "True", facts
        # The place: the packaged worker's own container, running the code the image carries.
        worker_host = compose_lab.run("exec", "-T", "packaged-worker", "hostname").stdout.strip()
        assert facts["hostname"] == worker_host, (facts, worker_host)
        assert facts["in_container"] == "True" and facts["worker"] == "packaged-worker", facts
        assert facts["code_dir"] == IMAGE_CODE_DIR, facts

        # Only that image has the package: the lab's own worker could not have run this flow.
        probe = compose_lab.run("exec", "-T", "prefect-worker", "python", "-c", "import lab_toolkit", check=False)
        assert probe.returncode != 0, "the lab's own worker has lab_toolkit: the packaged image is not what provides it"
    finally:
        compose_lab.run("--profile", "packaging", "rm", "--stop", "--force", "packaged-worker", check=False)
