"""Run a probe script of tests/probes/ in a fresh interpreter of the lab's venv, where the `.pth`
line installs the lab's Prefect speed-ups as in every lab process, and read the JSON it prints last.
A probe only reports what it saw; the test that runs it asserts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBES = Path(__file__).parent / "probes"


def run_script(probe: str, *args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess:
    """Run tests/probes/<probe> (an unreachable API URL unless `env` says otherwise)."""
    return subprocess.run(
        [sys.executable, str(PROBES / probe), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PREFECT_API_URL": "http://127.0.0.1:1/api", **env},
    )


def run_probe_and_stderr(probe: str, *args: str, timeout: float = 180, **env: str) -> tuple[dict, str]:
    """The JSON a probe printed last, and what it wrote to stderr (asserting that it succeeded)."""
    result = run_script(probe, *args, timeout=timeout, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def run_probe(probe: str, *args: str, timeout: float = 180, **env: str) -> dict:
    return run_probe_and_stderr(probe, *args, timeout=timeout, **env)[0]
