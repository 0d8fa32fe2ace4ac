"""Run a probe script in a fresh interpreter of the lab's venv, where the `.pth` line installs the
lab's Prefect speed-ups as in every lab process, and read the JSON it prints last."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def run_probe(script: str, timeout: float = 180, **env: str) -> dict:
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "PREFECT_API_URL": "http://127.0.0.1:1/api", **env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])
