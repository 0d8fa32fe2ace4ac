"""workshop_lab/prefect_speedups/dask_submit.py and block_secrets_cache.py, the lab's speed-ups for
what a flow does per task run it submits to Dask: Prefect task submissions get a unique key without
Dask hashing their payload (other submissions are untouched), and a block's dump with secrets is
the same as Prefect's, with its schema built once. Runs in fresh interpreters of the lab's venv,
where the `.pth` line installs the hooks, as in every lab process; a real (in-process) Dask
scheduler takes the submissions (tests/probes/speedups_dask_submit.py, speedups_block_secrets.py).
The stack tests and bench/dask_overhead.py run real flows through them."""

from __future__ import annotations

from tests.fresh_interpreter import run_probe


def test_prefect_task_submissions_get_unique_keys_without_hashing_their_payload():
    seen = run_probe("speedups_dask_submit.py")
    assert seen["patched"], seen
    assert seen["task_keys_unique_uuids"], seen
    assert seen["hashed_by_tasks"] == 0, seen
    assert seen["plain_key_hashed"], "a plain function keeps Dask's own (hashed) key"
    assert seen["explicit_key"] == "mine", seen


def test_stock_prefect_dask_hashes_every_task_submission():
    """What the patch removes is really there: with the speed-ups off, Dask tokenizes each one."""
    seen = run_probe("speedups_dask_submit.py", LAB_PREFECT_SPEEDUPS="0")
    assert not seen["patched"], seen
    assert seen["hashed_by_tasks"] >= 3, seen
    assert not seen["task_keys_unique_uuids"], seen


def test_block_dumps_with_secrets_are_prefects_and_build_each_schema_once():
    seen = run_probe("speedups_block_secrets.py")
    assert seen["patched"] and seen["same_as_prefect"], seen
    assert seen["dump"][1]["value"] == "s3cret" and seen["dump"][0]["basepath"] == "/tmp/results", seen
    assert seen["builds_patched"] <= 2, f"one schema per block class, not one per dump: {seen}"
    assert seen["builds_stock"] > seen["builds_patched"], seen
