"""
# 09 · Docker and Python packaging: ship the code with the run

What you will learn
- Code that several flows share belongs in a *package*, not in copies: `flows/packaging/lab_toolkit/`
  is one (a `pyproject.toml` with a name and a version, the code under `src/`). `pip install` puts it
  where every process of that Python finds it, and its version is recorded in the install.
- An *image* carries a flow's whole world: `images/flows/Dockerfile` starts FROM the lab image (the
  locked dependencies), pip-installs `lab_toolkit` and copies the flow code to `/opt/flows`. The
  image alone can run this flow: no folder of your laptop is mounted into it.
- A *work pool* routes runs to the workers that can run them. This flow's deployment targets the
  pool `workshop-packaged`, served only by `packaged-worker`, a worker running inside that image.
  Its pull step points at the code baked into the image (`/opt/flows`), not at your `flows/` folder:
  edit this file and nothing changes until you rebuild the image. That is the point.
- The next step, one container per flow run, needs a `docker` work pool and the Docker socket:
  `docs/docker-work-pool.md` explains it and why the lab does not ship it.

How to run it
- Start the packaged worker with the Docker lab (the service sits behind a compose profile):
  `docker compose --profile packaging up --build --wait`
- Then `./lab run docker-packaging/docker-packaging`, or in the UI: http://localhost:4200 →
  Deployments → docker-packaging → Run → Quick run. On the flow run's page, the "Artifacts" tab shows
  which lab_toolkit version ran, where pip installed it, and in which container.
- Inside the image alone, on a throwaway Prefect server (no lab needed):
  `docker run --rm workflow-orchestration-lab-flows:0.1.0 python /opt/flows/09_docker_packaging.py`
- On your machine: `.venv/bin/pip install ./flows/packaging/lab_toolkit`, then
  `.venv/bin/python flows/09_docker_packaging.py` (it then reports your venv, not a container).

Walkthrough: read `flows/packaging/lab_toolkit/pyproject.toml`, then `images/flows/Dockerfile`
(each step says why), then the `packaged-worker` service in `docker-compose.yml`, then this file.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

# Where this file is when it runs. In the packaged worker it is /opt/flows: the copy the image
# carries. The lab's own worker would show /opt/lab/flows (Docker) or your repo's flows/ folder.
CODE_DIR = Path(__file__).resolve().parent


# ---------------------------------------------------------------------------------------------
# Importing the package. `lab_toolkit` is installed in the flows image, not in the lab's own
# image or venv, and this file is loaded in both: `prefect deploy` (the lab's `setup` step) loads
# it to read the flow's parameters. So the import waits until a task needs it, and says what to
# do when the package is missing instead of failing with a bare ModuleNotFoundError.
# ---------------------------------------------------------------------------------------------
def load_toolkit() -> ModuleType:
    """Import lab_toolkit, or explain how to install it."""
    try:
        import lab_toolkit
    except ModuleNotFoundError as exc:
        raise RuntimeError(
            "lab_toolkit is not installed in this Python. Run the deployment on the packaged worker "
            "(docker compose --profile packaging up --build --wait), or install it here: "
            "pip install ./flows/packaging/lab_toolkit"
        ) from exc
    return lab_toolkit


# ---------------------------------------------------------------------------------------------
# A task that uses the package: it asks lab_toolkit where it is installed and where it runs.
# Pip's record of the install (the version, the INSTALLER file) exists only for an installed
# package, so this report cannot be faked by a stray copy of the source on sys.path.
# ---------------------------------------------------------------------------------------------
@task
def inspect_runtime() -> dict[str, str | bool]:
    """Report the installed lab_toolkit, the container and the flow code this run uses."""
    toolkit = load_toolkit()
    return {
        **toolkit.describe_runtime(),
        "code_dir": str(CODE_DIR),
        "worker": os.environ.get("LAB_WORKER_NAME", "(not started by a lab worker)"),
    }


# ---------------------------------------------------------------------------------------------
# The flow: one task, then a Markdown artifact built with the package's own helper, so the
# report on the run's page is the proof of what ran where.
# ---------------------------------------------------------------------------------------------
@flow(name="docker-packaging", log_prints=True)
def docker_packaging() -> dict[str, str | bool]:
    """Run with the packaged lab_toolkit and report its version, location and container."""
    report = inspect_runtime()
    toolkit = load_toolkit()
    create_markdown_artifact(
        key="docker-packaging-report",
        markdown="## What ran this flow\n\n"
        + toolkit.markdown_table([{"fact": k, "value": v} for k, v in report.items()]),
        description="The lab_toolkit version and install location, and the container that ran the flow.",
    )
    where = f"container {report['hostname']}" if report["in_container"] else f"host {report['hostname']} (no container)"
    print(
        f"lab_toolkit {report['lab_toolkit_version']} from {report['lab_toolkit_location']}, "
        f"flow code from {report['code_dir']}, in {where}"
    )
    return report


if __name__ == "__main__":
    docker_packaging()
