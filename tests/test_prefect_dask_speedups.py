"""workshop_lab/prefect_speedups/dask_submit.py and prefect_block_secrets_cache.py, the lab's speed-ups for
what a flow does per task run it submits to Dask: Prefect task submissions get a unique key without
Dask hashing their payload (other submissions are untouched), and a block's dump with secrets is
the same as Prefect's, with its schema built once. Runs in fresh interpreters of the lab's venv,
where the `.pth` line installs the hooks, as in every lab process; a real (in-process) Dask
scheduler takes the submissions. The stack tests and bench/dask_overhead.py run real flows through them."""

from __future__ import annotations

from tests.fresh_interpreter import run_probe

SUBMIT_PROBE = """
import json, re
import distributed.client as dask_client
from distributed import LocalCluster
from prefect import task
from prefect_dask.client import PrefectDaskClient

hashed = []
tokenize = dask_client.tokenize
dask_client.tokenize = lambda *args, **kwargs: (hashed.append(1), tokenize(*args, **kwargs))[1]

@task
def double(x: int) -> int:
    return 2 * x

# No worker: the scheduler names and holds the submissions, nothing runs (no Prefect API needed).
with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster, PrefectDaskClient(cluster) as client:
    task_keys = [client.submit(double, x=1).key for _ in range(3)]
    hashed_by_tasks = len(hashed)
    plain_key = client.submit(sorted, [3, 1, 2]).key
    explicit_key = client.submit(double, key="mine", x=1).key
print(json.dumps({
    "patched": getattr(PrefectDaskClient.submit, "_lab_speedup", False),
    "task_keys_unique_uuids": len(set(task_keys)) == 3 and all(
        re.fullmatch(r"double-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", k) for k in task_keys),
    "task_keys": task_keys,
    "hashed_by_tasks": hashed_by_tasks,
    "plain_key_hashed": bool(re.fullmatch(r"sorted-[0-9a-f]{32}", plain_key)), "plain_key": plain_key,
    "explicit_key": explicit_key,
}))
"""

BLOCK_PROBE = """
import json
from prefect.blocks.core import Block
from prefect.blocks.system import Secret
from prefect.filesystems import LocalFileSystem
from workshop_lab import prefect_speedups

schema_builds = []
for cls in (LocalFileSystem, Secret):
    original = cls.model_json_schema.__func__
    def counted(klass, *args, _original=original, **kwargs):
        schema_builds.append(klass.__name__)
        return _original(klass, *args, **kwargs)
    cls.model_json_schema = classmethod(counted)

def dumps():
    return [block.model_dump(mode="json", context={"include_secrets": True})
            for block in (LocalFileSystem(basepath="/tmp/results"), Secret(value="s3cret"), Secret(value="other"))]

is_patched = getattr(Block._field_has_secrets, "_lab_speedup", False)
patched = dumps(); patched_again = dumps(); builds_patched = len(schema_builds)
prefect_speedups.set_applied(False)
schema_builds.clear(); stock = dumps(); builds_stock = len(schema_builds)
print(json.dumps({
    "patched": is_patched, "switched_off": not getattr(Block._field_has_secrets, "_lab_speedup", False),
    "same_as_prefect": patched == stock == patched_again, "dump": patched,
    "builds_patched": builds_patched, "builds_stock": builds_stock,
}))
"""


def test_prefect_task_submissions_get_unique_keys_without_hashing_their_payload():
    seen = run_probe(SUBMIT_PROBE)
    assert seen["patched"], seen
    assert seen["task_keys_unique_uuids"], seen
    assert seen["hashed_by_tasks"] == 0, seen
    assert seen["plain_key_hashed"], "a plain function keeps Dask's own (hashed) key"
    assert seen["explicit_key"] == "mine", seen


def test_stock_prefect_dask_hashes_every_task_submission():
    """What the patch removes is really there: with the speed-ups off, Dask tokenizes each one."""
    seen = run_probe(SUBMIT_PROBE, LAB_PREFECT_SPEEDUPS="0")
    assert not seen["patched"], seen
    assert seen["hashed_by_tasks"] >= 3, seen
    assert not seen["task_keys_unique_uuids"], seen


def test_block_dumps_with_secrets_are_prefects_and_build_each_schema_once():
    seen = run_probe(BLOCK_PROBE)
    assert seen["patched"] and seen["same_as_prefect"], seen
    assert seen["dump"][1]["value"] == "s3cret" and seen["dump"][0]["basepath"] == "/tmp/results", seen
    assert seen["builds_patched"] <= 2, f"one schema per block class, not one per dump: {seen}"
    assert seen["builds_stock"] > seen["builds_patched"], seen
