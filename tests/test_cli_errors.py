"""Bad input gets a clear error: the CLI says what happened and what to do, and leaves nothing running."""

from __future__ import annotations

import socket

from tests.conftest import EmbeddedLab


def test_taken_port_names_the_port_and_the_setting_that_moves_it(tmp_path):
    lab = EmbeddedLab(tmp_path / "lab")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(lab.env["PREFECT_PORT"])))
        squatter.listen()
        result = lab.cli("up", check=False, timeout=60)
    assert result.returncode == 1
    port = lab.env["PREFECT_PORT"]
    assert f"Port {port} (prefect-server) is already in use" in result.stderr, result.stderr
    assert "PREFECT_PORT=" in result.stderr, result.stderr
    assert lab.processes() == []


def test_invalid_setting_is_rejected_before_anything_starts(tmp_path):
    lab = EmbeddedLab(tmp_path / "lab")
    lab.env["DASK_WORKERS"] = "two"
    result = lab.cli("up", check=False, timeout=60)
    assert result.returncode == 1
    assert "DASK_WORKERS='two' must be a whole number" in result.stderr, result.stderr
    assert lab.processes() == []


def test_reset_without_a_terminal_asks_for_confirmation(tmp_path):
    lab = EmbeddedLab(tmp_path / "lab")
    result = lab.cli("reset", check=False)
    assert result.returncode == 1
    assert "./lab reset --yes" in result.stderr


def test_unknown_service_in_logs_lists_the_services(tmp_path):
    lab = EmbeddedLab(tmp_path / "lab")
    result = lab.cli("logs", "prefect", check=False)
    assert result.returncode == 1
    assert "prefect-server" in result.stderr and "dask-worker" in result.stderr
