"""
# Solution 09 · Docker and Python packaging: which versions does this run really use?

How to run it
- In the flows image, on a throwaway server (rebuild first so the image carries this file):
  `docker compose --profile packaging build packaged-worker`, then
  `docker run --rm workflow-orchestration-lab-flows:0.1.0 python /opt/flows/exercises/solutions/09_docker_packaging_solution.py`
- As deployments (exercise step 3): the same entrypoint on both pools, `workshop` and
  `workshop-packaged`. On the lab's worker the run FAILS (lab_toolkit is not installed there);
  on the packaged worker it COMPLETES. The work pool is how a run finds the environment it needs.

The audit is done with importlib.metadata (the standard library), so it reports a missing package
instead of crashing on the import; lab_toolkit then formats the report when it is there.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

NOT_INSTALLED = "not installed"


# ---------------------------------------------------------------------------------------------
# Ask the installed distributions, not the modules: the version pip recorded at install time.
# ---------------------------------------------------------------------------------------------
@task
def installed_versions(packages: list[str]) -> dict[str, str]:
    """Return the installed version of each distribution, or 'not installed'."""
    found: dict[str, str] = {}
    for name in packages:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = NOT_INSTALLED
    return found


# ---------------------------------------------------------------------------------------------
# The flow: report every version, then fail loudly if a required package is missing, so a run
# routed to the wrong pool (an environment without it) ends FAILED with the reason.
# ---------------------------------------------------------------------------------------------
@flow(name="package-audit", log_prints=True)
def package_audit(
    packages: list[str] = ["prefect", "prefect-dask", "distributed", "lab-toolkit"],  # noqa: B006 (Prefect copies parameters)
    required: list[str] = ["lab-toolkit"],  # noqa: B006
) -> dict[str, str]:
    """Report the installed versions of `packages`; fail if one of `required` is missing."""
    versions = installed_versions(sorted(set(packages) | set(required)))
    rows = [{"package": name, "version": found} for name, found in versions.items()]
    try:
        from lab_toolkit import markdown_table

        table = markdown_table(rows)
    except ModuleNotFoundError:
        table = "\n".join(f"- {row['package']}: {row['version']}" for row in rows)
    create_markdown_artifact(key="package-audit", markdown=table, description="Installed package versions.")
    print(table)
    missing = [name for name in required if versions[name] == NOT_INSTALLED]
    if missing:
        raise RuntimeError(
            f"required packages missing in this environment: {', '.join(missing)} "
            "(run this deployment on the pool whose image installs them)"
        )
    return versions


if __name__ == "__main__":
    package_audit()
