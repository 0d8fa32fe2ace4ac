"""
# Exercise 09 · Docker and packaging: your starting point (flows/exercises/09_docker_packaging.md)

Copy it, then make `./lab check 09` pass (step 3's flow):
    mkdir -p flows/mine && cp flows/exercises/starters/09_docker_packaging.py flows/mine/
    .venv/bin/python flows/mine/09_docker_packaging.py
    ./lab check 09
"""

from __future__ import annotations

from prefect import flow


@flow(name="package-audit", log_prints=True)
def package_audit(
    packages: list[str] = ["prefect", "prefect-dask", "distributed", "lab-toolkit"],  # noqa: B006
    required: list[str] = ["lab-toolkit"],  # noqa: B006
) -> dict[str, str]:
    """Report the installed versions of `packages`; fail if one of `required` is missing."""
    # TODO: each distribution's installed version (importlib.metadata), "not installed" when missing;
    # a markdown artifact "package-audit" listing them; fail, naming them, when a required one is missing
    return {}


if __name__ == "__main__":
    package_audit()
