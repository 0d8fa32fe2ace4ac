"""Probe for tests/test_speedup_guards.py: a deliberately broken patch (dask_submit's, as a Prefect
upgrade could break it: it replaces `PrefectDaskClient.submit`, then fails), and what importing its
Prefect module does, in this thread (`flow`) or inside a real in-process Dask worker (`dask`).
Prints, as JSON, whether the import worked, the error it raised, and whether Prefect is stock."""

import json
import sys

from workshop_lab import prefect_speedups
from workshop_lab.prefect_speedups import dask_submit


def broken(module):
    prefect_speedups.replace(module.PrefectDaskClient, "submit", lambda *args, **kwargs: None)
    raise AttributeError("'PrefectDaskClient' has no attribute 'submit_task' (simulated: a Prefect upgrade)")


dask_submit.patch = broken


def import_and_look() -> dict:
    """Import the patched module; say whether its `submit` carries the lab's mark."""
    import threading

    import prefect_dask.client

    submit = prefect_dask.client.PrefectDaskClient.submit
    return {"thread": threading.current_thread().name, "submit_patched": getattr(submit, prefect_speedups.MARK, False)}


seen = {"imported_before": "prefect_dask.client" in sys.modules}
try:
    if sys.argv[1] == "dask":
        from distributed import Client, LocalCluster

        with (
            LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
            Client(cluster) as client,
        ):
            future = client.submit(import_and_look, pure=False)
            try:
                seen["imported"] = future.result(timeout=120)
            finally:
                seen["worker_status"] = future.status
    else:
        seen["imported"] = import_and_look()
except Exception as error:
    seen["error"] = f"{type(error).__name__}: {error}"
print(json.dumps(seen))
