"""The files in airbyte/ agree with the connector the lab installs: the saved spec and catalog
(which spare every sync two connector start-ups) belong to the pinned source-faker version, the
config validates against that spec, and every configured stream is in the catalog."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import yaml

from workshop_lab.stack.settings import REPO_ROOT

AIRBYTE = REPO_ROOT / "airbyte"
AIRBYTE_PYTHON = REPO_ROOT / ".venv-airbyte" / "bin" / "python"


def test_saved_metadata_belongs_to_the_installed_connector():
    saved = json.loads((AIRBYTE / "source-faker.metadata.json").read_text())
    installed = subprocess.run(
        [str(AIRBYTE_PYTHON), "-c", "from importlib.metadata import version; print(version('airbyte-source-faker'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert saved["connector_version"] == installed, (
        "refresh it: .venv-airbyte/bin/python airbyte/extract_load.py --capture-metadata"
    )
    lock = (AIRBYTE / "requirements.lock").read_text()
    assert f"airbyte-source-faker=={installed}" in lock


def test_the_config_is_valid_and_its_streams_exist():
    source = yaml.safe_load((AIRBYTE / "source-faker.yaml").read_text())
    saved = json.loads((AIRBYTE / "source-faker.metadata.json").read_text())
    jsonschema.validate(source["config"], saved["spec"]["connectionSpecification"])
    catalog = {stream["name"]: stream for stream in saved["catalog"]["streams"]}
    for name, sync in source["streams"].items():
        assert name in catalog, name
        assert sync["cursor_field"] in catalog[name]["json_schema"]["properties"], (name, sync)
        assert sync["sync_mode"] in catalog[name]["supported_sync_modes"], (name, sync)


def pins(lock: Path) -> dict[str, str]:
    return dict(
        line.split(" ")[0].split("==")
        for line in lock.read_text().splitlines()
        if "==" in line and not line.startswith(" ")
    )


def test_the_pyairbyte_lock_is_the_connector_lock_plus_pyairbyte():
    """LAB_WITH_PYAIRBYTE=1 installs pyairbyte.lock over the same venv: it must change no pin."""
    connector, full = pins(AIRBYTE / "requirements.lock"), pins(AIRBYTE / "pyairbyte.lock")
    assert "airbyte" not in connector and "airbyte" in full
    assert {name: full.get(name) for name in connector} == connector
