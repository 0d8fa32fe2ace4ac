#!/usr/bin/env bash
# Usage: scripts/lock.sh
# Re-resolve the pinned dependencies from pyproject.toml into the two lock files that the
# image, the embedded venv and CI install from. Run it after changing a dependency range.
#   requirements.lock      runtime: every lab service (the image and `./lab up`)
#   requirements-dev.lock  runtime + the test suite (`./lab test`), the same runtime pins
#   airbyte/requirements.lock  source-faker + the DuckDB loader, a venv of their own (.venv-airbyte, /opt/airbyte-venv)
#   airbyte/pyairbyte.lock     the same + PyAirbyte (Snowflake target; opt-in: LAB_WITH_PYAIRBYTE=1)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON_VERSION=${PYTHON_VERSION:-3.11}
command -v uv >/dev/null || { echo "uv is needed to re-lock: python3 -m pip install uv" >&2; exit 1; }
echo "Resolving runtime dependencies for Python ${PYTHON_VERSION}"
uv pip compile pyproject.toml --python-version "${PYTHON_VERSION}" --generate-hashes \
    --no-header --output-file requirements.lock
echo "Resolving test dependencies on top of the same runtime pins"
# dbt-snowflake 1.11 caps certifi below 2025.4.26 (a stale cap); the test venv keeps the runtime's
# certifi instead, so runtime pins stay identical everywhere.
overrides="$(mktemp)"; trap 'rm -f "$overrides"' EXIT
grep -E '^certifi==' requirements.lock | sed 's/ .*//' > "$overrides"
uv pip compile pyproject.toml --extra dev --constraint requirements.lock --override "$overrides" \
    --python-version "${PYTHON_VERSION}" --generate-hashes --no-header --output-file requirements-dev.lock
echo "Resolving the Airbyte environment (source-faker + its loader; PyAirbyte on top, opt-in)"
# The union first (with PyAirbyte), then the connector's own set within its pins: the two agree.
uv pip compile airbyte/pyairbyte.in --override airbyte/overrides.txt \
    --python-version "${PYTHON_VERSION}" --generate-hashes --no-header --output-file airbyte/pyairbyte.lock
uv pip compile airbyte/requirements.in --override airbyte/overrides.txt --constraint airbyte/pyairbyte.lock \
    --python-version "${PYTHON_VERSION}" --generate-hashes --no-header --output-file airbyte/requirements.lock
