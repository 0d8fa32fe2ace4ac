"""The guards around workshop_lab/prefect_speedups/: the lab patches Prefect's internals, so it
must notice when Prefect changes under it and must never leave a learner on a half-patched Prefect.

- A version other than the one the patches were written for applies none of them (one warning line).
- The source of every Prefect function a patch replaces or relies on is pinned: an upgrade fails
  here, naming the function and what to re-check, until someone has reviewed the patch.
- Strict mode (LAB_PREFECT_SPEEDUPS_STRICT=1, what CI exports) turns a patch that fails to apply
  into a failed import, in the flow process and in a Dask worker; without it, Prefect stays stock.
- The heartbeat patch still sends heartbeats, at the configured interval, and says when it cannot.
Each probe runs in a fresh interpreter of the lab's venv (tests/probes/, tests/fresh_interpreter.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fresh_interpreter import run_probe, run_probe_and_stderr, run_script
from workshop_lab import prefect_speedups

REPO = Path(__file__).resolve().parent.parent

# What each speed-up replaces or relies on in Prefect 3.9.1 / prefect-dask 0.3.7, the sha256 of its
# source (of its repr for a value), and what to re-check in the patch when it changes.
PINNED = {
    "prefect.client.orchestration:PrefectClient.__init__": (
        "2619331e20adc1eb6846e8c96c12c46c0a03de1968eacb0c64e8e7a071cc18ec",
        "tls_cache.py: does __init__ still build its own ssl context from httpx_settings['verify'] / the cert "
        "file settings, and honour a caller's verify= and PREFECT_API_TLS_INSECURE_SKIP_VERIFY?",
    ),
    "prefect.client.orchestration:SyncPrefectClient.__init__": (
        "c5b9a41b666e497be22f97f2ece07d2ad370b1b047c373d21501a5eb91ee8c4e",
        "tls_cache.py: same questions as for PrefectClient.__init__",
    ),
    "prefect.context:SettingsContext": (
        "340575a960e7b94dc4f8713a1ac9a41c16fe15ae7f8cccd330c1836a053c8dad",
        "context_cache.py: is serialize() still a pure function of the (frozen) settings, and is "
        "SettingsContext(settings=<dict>) still how a serialized context is rebuilt?",
    ),
    "prefect.context:hydrated_context": (
        "245157195e9467aea8dfe889bc2d59d06e3cb7c04b25e0ae840fab07018d52fb",
        "context_cache.py: does the worker side still rebuild settings via SettingsContext(**serialized)?",
    ),
    "prefect.context:serialize_context": (
        "aabeee621c8b146cc2e56654a0cfe729ee299e6f28658e80ce5f050f5e7eb2e1",
        "context_cache.py: does the flow side still call SettingsContext.serialize() per submitted task?",
    ),
    "prefect.flow_engine:_send_heartbeats": (
        "83e152cb73a04e977ca181188e99b3d583c894892b5456043b2eb51e45dbe996",
        "heartbeat_wait.py is a copy of this function (only its wait differs): port every change to the copy",
    ),
    "prefect.flow_engine:MINIMUM_HEARTBEAT_INTERVAL": (
        "624b60c58c9d8bfb6ff1886c2fd605d2adeb6ea4da576068201b6c6958ce93f4",
        "heartbeat_wait.py: the copy reads this minimum at patch time",
    ),
    "prefect.flow_engine:BaseFlowRunEngine.heartbeat_seconds": (
        "7fdfd552091f2cde45d84945b4787080e242b96bb63d129dc2ce4397014df264",
        "heartbeat_wait.py: the copy's interval comes from this property",
    ),
    "prefect.flow_engine:BaseFlowRunEngine._build_heartbeat_event_template": (
        "58baa75504b23ec746339a1c42b33fd41275da8a9edef8013f28e37653661e3e",
        "heartbeat_wait.py: the copy calls it once per run, as Prefect's does",
    ),
    "prefect.flow_engine:BaseFlowRunEngine._emit_flow_run_heartbeat": (
        "f9d095665c3729b083cfcd1f26944b6d33b46cb62c9f0c36e2e8f43ba94bf2fb",
        "heartbeat_wait.py: the copy calls it with (resource, related) for every heartbeat",
    ),
    "prefect_dask.client:PrefectDaskClient.submit": (
        "ca47dee6b94af8dd992d220ae3027513977c00daa7d1eabc09091178d3e4ce6c",
        "dask_submit.py: does submit still pass a fresh task_run_id per call (so pure=False loses nothing), "
        "and still accept key=/pure=?",
    ),
    "prefect.blocks.core:Block._field_has_secrets": (
        "e4b8c644e43e41e4901db6fc9c41cfc88bf862169fda403102b0a06cf62588c9",
        "block_secrets_cache.py: is the answer still a function of (block class, field name) only?",
    ),
    "prefect.server.events.ordering:PRECEDING_EVENT_LOOKBACK": (
        "c48e7e742f59c426360b3c6d5792f783c45f4d091884e83ef1fb9721cea1757f",
        "event_ordering.py: Prefect's wait for an unseen leader (15 min in 3.9.1); is 30 s still right?",
    ),
    "prefect.server.events.ordering.memory:CausalOrdering": (
        "8b6ad4230b38ca3f6ede974986d07dcc44dc260b6c3c7f5377a636161ff2b1d9",
        "event_ordering.py: does the in-memory ordering still read the module's PRECEDING_EVENT_LOOKBACK?",
    ),
    "prefect.server.events.ordering.db:CausalOrdering": (
        "aa44ced79fc8baf13f628330eaf344a596da417e1d502710e9348586cf75355d",
        "event_ordering.py: does the database ordering still read the module's PRECEDING_EVENT_LOOKBACK?",
    ),
}


def speedup_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(prefect_speedups.PREFIX)]


# --- the version guard -----------------------------------------------------------------------------


def test_the_versions_the_patches_were_written_for_are_the_locked_ones():
    lock = (REPO / "requirements.lock").read_text()
    locked = {name: re.search(rf"^{name}==(\S+)", lock, re.MULTILINE).group(1) for name in prefect_speedups.WRITTEN_FOR}
    assert locked == prefect_speedups.WRITTEN_FOR, "requirements.lock moved: review the patches (see PINNED below)"


@pytest.mark.parametrize("pretended", ["prefect=3.10.0", "prefect-dask=0.3.8"])
def test_another_version_leaves_prefect_stock_with_one_warning_line(pretended):
    seen, stderr = run_probe_and_stderr("speedups_version_mismatch.py", pretended, LAB_PREFECT_SPEEDUPS_STRICT="0")
    assert seen["marked"] == [] and seen["replaced"] == 0, f"Prefect is not stock: {seen}"
    warnings = speedup_lines(stderr)
    assert len(warnings) == 1, stderr
    assert "none applied" in warnings[0] and pretended.replace("=", " ") in warnings[0], warnings
    assert "LAB_PREFECT_SPEEDUPS=0" in warnings[0], "the warning says how to silence it"
    assert seen["status"].startswith("Prefect speed-ups: skipped"), seen


def test_the_written_for_versions_patch_every_target():
    """The same probe on the real versions: every patched attribute carries the mark (the probe sees them)."""
    seen, stderr = run_probe_and_stderr("speedups_version_mismatch.py")
    assert not speedup_lines(stderr), stderr
    assert len(seen["marked"]) == seen["replaced"] == 9, seen
    assert seen["status"].startswith("Prefect speed-ups: on"), seen


def test_threads_importing_prefect_at_once_do_not_hang_the_hook():
    """Seven threads each import a patched module for the first time, at once (wrapt 2.5.2's hook
    hung here). Stock Prefect may fail one of those imports on its own circular imports then; the
    promise is that the process ends, and every speed-up that applied says so on its attribute."""
    result = run_script("speedups_version_mismatch.py", "--threads", timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["marked"], seen


def test_strict_mode_fails_the_import_on_another_version():
    result = run_script("speedups_version_mismatch.py", "prefect=3.10.0", LAB_PREFECT_SPEEDUPS_STRICT="1")
    assert result.returncode != 0, result.stdout
    assert "SpeedupError" in result.stderr and "prefect 3.10.0" in result.stderr, result.stderr


@pytest.mark.parametrize(("switch", "state"), [("1", "on"), ("0", "off")])
def test_lab_status_says_whether_they_are_on_and_how_to_turn_them_off(tmp_path, switch, state):
    """No lab runs in the throwaway LAB_HOME: status lists stopped services, then the speed-ups line."""
    env = {**os.environ, "LAB_HOME": str(tmp_path), "LAB_PREFECT_SPEEDUPS": switch}
    result = subprocess.run(
        [sys.executable, str(REPO / "lab"), "status"], capture_output=True, text=True, env=env, timeout=300
    )
    lines = [line.strip() for line in result.stdout.splitlines() if "Prefect speed-ups" in line]
    assert len(lines) == 1, result.stdout + result.stderr
    assert lines[0].startswith(f"Prefect speed-ups: {state}") and "LAB_PREFECT_SPEEDUPS=0" in lines[0], lines


# --- the digests ------------------------------------------------------------------------------------


def test_every_patched_prefect_original_is_the_reviewed_one():
    digests = run_probe("speedups_digests.py", *PINNED, LAB_PREFECT_SPEEDUPS="0")
    changed = [
        f"  {target}\n    re-check: {why}" for target, (digest, why) in PINNED.items() if digests[target] != digest
    ]
    assert not changed, (
        "Prefect changed what the lab's speed-ups patch (workshop_lab/prefect_speedups/). Review each:\n"
        + "\n".join(changed)
        + "\nthen update its digest in PINNED (tests/test_speedup_guards.py), WRITTEN_FOR in "
        "workshop_lab/prefect_speedups/__init__.py, and docs/prefect-speedups.md."
    )


# --- strict mode and a patch that fails to apply -----------------------------------------------------


def test_a_broken_patch_is_undone_with_one_line_on_stderr():
    seen, stderr = run_probe_and_stderr("speedups_strict.py", "flow", LAB_PREFECT_SPEEDUPS_STRICT="0")
    assert not seen["imported_before"] and "error" not in seen, seen
    assert seen["imported"]["submit_patched"] is False, f"half a patch left in place: {seen}"
    lines = speedup_lines(stderr)
    assert len(lines) == 1 and "dask_submit: not applied to prefect_dask.client" in lines[0], stderr


def test_strict_mode_fails_the_import_a_broken_patch_applies_to():
    seen = run_probe("speedups_strict.py", "flow", LAB_PREFECT_SPEEDUPS_STRICT="1")
    assert "imported" not in seen, seen
    assert seen["error"].startswith("SpeedupError: workshop_lab.prefect_speedups.dask_submit: not applied"), seen
    assert "LAB_PREFECT_SPEEDUPS_STRICT=1" in seen["error"], "the error names the switch that made it fatal"


def test_strict_mode_fails_the_task_in_a_dask_worker():
    """The import happens in the worker's thread (in-process LocalCluster): the task errs, and its
    error reaches the flow's side instead of a worker log no one reads."""
    seen = run_probe("speedups_strict.py", "dask", LAB_PREFECT_SPEEDUPS_STRICT="1")
    assert not seen["imported_before"], seen
    assert seen["worker_status"] == "error", seen
    assert seen["error"].startswith("SpeedupError: workshop_lab.prefect_speedups.dask_submit"), seen


def test_without_strict_mode_a_dask_worker_runs_stock_prefect():
    seen = run_probe("speedups_strict.py", "dask", LAB_PREFECT_SPEEDUPS_STRICT="0")
    assert seen["worker_status"] == "finished", seen
    assert "Dask" in seen["imported"]["thread"], f"imported in a Dask worker thread: {seen}"
    assert seen["imported"]["submit_patched"] is False, seen


# --- the heartbeat patch ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def heartbeats() -> dict:
    return run_probe("speedups_heartbeat.py", PREFECT_FLOWS_HEARTBEAT_FREQUENCY="45")


def test_heartbeats_are_sent_for_the_flow_run_at_the_configured_interval(heartbeats):
    assert heartbeats["patched"], heartbeats
    configured = heartbeats["configured"]
    assert configured["intervals"] == [45], f"the thread waits PREFECT_FLOWS_HEARTBEAT_FREQUENCY: {configured}"
    assert configured["count"] >= 3, f"one heartbeat per (20 ms) interval: {configured}"
    assert configured["names"] == ["prefect.flow-run.heartbeat"], configured
    assert configured["resources"] == [heartbeats["flow_run_resource"]], configured
    assert heartbeats["temporary_60"]["intervals"] == [60], "a flow's own settings are honoured"


def test_heartbeats_are_prefects_own_events(heartbeats):
    stock = run_probe("speedups_heartbeat.py", PREFECT_FLOWS_HEARTBEAT_FREQUENCY="45", LAB_PREFECT_HEARTBEAT_WAIT="0")
    assert not stock["patched"] and stock["configured"]["count"] == 1, stock
    strip_run = {"prefect.resource.id", "prefect.resource.name"}
    assert {k: v for k, v in heartbeats["first_event"]["resource"].items() if k not in strip_run} == {
        k: v for k, v in stock["first_event"]["resource"].items() if k not in strip_run
    }
    assert heartbeats["first_event"]["event"] == stock["first_event"]["event"]
    assert stock["real_wait_leave_seconds"] > heartbeats["real_wait_leave_seconds"], (stock, heartbeats)


def test_a_run_in_a_final_state_sends_none_and_the_end_does_not_wait(heartbeats):
    assert heartbeats["after_final_state"] == 0, heartbeats
    assert heartbeats["real_wait_count"] == 1, heartbeats
    assert heartbeats["real_wait_leave_seconds"] < 0.5, "the thread wakes when the run ends, not after a nap"


def test_a_heartbeat_that_fails_is_logged_at_warning(heartbeats):
    levels = {level for level, message in heartbeats["failure_logs"] if "server unreachable" in message}
    assert levels == {"WARNING"}, heartbeats["failure_logs"]
