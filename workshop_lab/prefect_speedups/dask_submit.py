"""Prefect-on-Dask's biggest per-submit cost in the flow process: hashing what never repeats.

prefect-dask 0.3's `PrefectDaskClient.submit` hands every task run to Dask with Dask's default
`pure=True` and no key, so Dask names the key `<function>-<tokenize(function, kwargs)>`. For
objects it cannot hash directly, Dask's `tokenize` pickles (cloudpickle for the flow's by-value
code) and unpickles them, up to three times: the task, the whole serialized run context, the
wrapper closure. In bench/dask_overhead.py's profile that was about half of the flow process's
time per task run (7.5-9 ms of 12 ms on the lab's 2-core reference machine).

The hash buys nothing: the kwargs carry a fresh `task_run_id` (a uuid4) for every submission, so
the key can never repeat and Dask's "same key, same future" reuse can never apply. With
`pure=False`, Dask names the key `<function>-<uuid4>` instead, the same prefix, so the dashboard
groups the tasks as before. Only Prefect task submissions without an explicit key change; any
other `submit` is untouched. (Upstream: PrefectHQ/prefect#18191.)

Installed by workshop_lab/prefect_speedups/__init__.py once `prefect_dask.client` loads.
"""

from __future__ import annotations

import functools

from workshop_lab.prefect_speedups import replace


def patch(module) -> None:
    cls = module.PrefectDaskClient
    from prefect.tasks import Task

    original = cls.submit

    @functools.wraps(original)
    def submit(self, func, *args, key=None, pure=True, **kwargs):
        if isinstance(func, Task) and key is None:
            pure = False  # the key is unique anyway (a fresh task_run_id in kwargs): skip tokenize()
        return original(self, func, *args, key=key, pure=pure, **kwargs)

    replace(cls, "submit", submit)
