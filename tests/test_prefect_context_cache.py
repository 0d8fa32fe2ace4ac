"""workshop_lab/prefect_speedups/context_cache.py and heartbeat_wait.py, the lab's Prefect speed-ups
for Dask and flow runs: the settings context is serialized once and rebuilt once per process, and
what comes out is what Prefect itself would build; other settings are never mixed up with them;
the switches turn them off. Runs in fresh interpreters of the lab's venv, where the `.pth` line
installs the hooks, as in every lab process (the stack tests run real flows through them); the
probe is tests/probes/speedups_context_cache.py."""

from __future__ import annotations

from tests.fresh_interpreter import run_probe


def probe(**env: str) -> dict:
    return run_probe("speedups_context_cache.py", **env)


def test_settings_are_serialized_and_rebuilt_once_and_equal_to_prefects_own():
    seen = probe()
    assert seen["patched"] and seen["heartbeat_patched"], seen
    assert seen["copies_equal"] and seen["copy_isolated"], seen
    assert seen["rebuilt_once"] and seen["same_as_prefect"], seen


def test_other_settings_get_their_own_context():
    seen = probe()
    assert seen["other_url"] == "http://127.0.0.1:2/api", seen
    assert seen["other_built_url"] == "http://127.0.0.1:2/api" and seen["other_is_new"], seen


def test_the_switches_leave_prefect_as_released():
    seen = probe(LAB_PREFECT_CONTEXT_CACHE="0", LAB_PREFECT_HEARTBEAT_WAIT="0")
    assert not seen["patched"] and not seen["heartbeat_patched"], seen
    assert not seen["rebuilt_once"] and seen["same_as_prefect"], seen
