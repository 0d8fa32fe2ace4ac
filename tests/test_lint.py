"""The repo passes its own lint and format rules (ruff; the configuration is in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from workshop_lab.stack.settings import REPO_ROOT


@pytest.mark.parametrize(
    "args", [("check", "--no-fix", "."), ("format", "--check", "--diff", ".")], ids=["lint", "format"]
)
def test_ruff(args):
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, (
        f"ruff {' '.join(args)} (fix with: .venv/bin/ruff check --fix . && .venv/bin/ruff format .)\n"
        f"{result.stdout[-4000:]}{result.stderr[-2000:]}"
    )
