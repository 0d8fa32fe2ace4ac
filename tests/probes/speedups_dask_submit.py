"""Probe for tests/test_prefect_dask_speedups.py: Prefect task submissions to a real in-process
Dask scheduler (no worker: nothing runs, no Prefect API needed), with Dask's tokenize counted;
prints the keys and counts as JSON."""

import json
import re

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


UUID_KEY = r"double-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}"

with (
    LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster,
    PrefectDaskClient(cluster) as client,
):
    task_keys = [client.submit(double, x=1).key for _ in range(3)]
    hashed_by_tasks = len(hashed)
    plain_key = client.submit(sorted, [3, 1, 2]).key
    explicit_key = client.submit(double, key="mine", x=1).key
print(
    json.dumps(
        {
            "patched": getattr(PrefectDaskClient.submit, "_lab_speedup", False),
            "task_keys_unique_uuids": len(set(task_keys)) == 3 and all(re.fullmatch(UUID_KEY, k) for k in task_keys),
            "task_keys": task_keys,
            "hashed_by_tasks": hashed_by_tasks,
            "plain_key_hashed": bool(re.fullmatch(r"sorted-[0-9a-f]{32}", plain_key)),
            "plain_key": plain_key,
            "explicit_key": explicit_key,
        }
    )
)
