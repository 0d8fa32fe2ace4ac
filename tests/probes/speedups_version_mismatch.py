"""Probe for tests/test_speedup_guards.py: Prefect imported in a venv whose installed versions are
not the ones the speed-ups were written for. Arguments `distribution=version` (e.g.
`prefect=3.10.0`) make `importlib.metadata.version` report those; the probe then imports every
module a speed-up patches (`--threads`: each from its own thread, all at once, as a Dask worker's
threads may; wrapt 2.5.2's finder hung here: see docs/prefect-speedups.md) and prints, as JSON, every attribute that carries the patch mark."""

import importlib
import importlib.metadata
import json
import sys
import threading

pretended = dict(arg.split("=", 1) for arg in sys.argv[1:] if "=" in arg)
real_version = importlib.metadata.version
importlib.metadata.version = lambda name: pretended.get(name) or real_version(name)

from workshop_lab import prefect_speedups  # noqa: E402  (loaded by the .pth already)

if "--threads" in sys.argv:
    start = threading.Barrier(len(prefect_speedups.PATCHES))

    def import_at_once(name: str) -> None:
        start.wait()
        importlib.import_module(name)

    threads = [threading.Thread(target=import_at_once, args=(t,)) for t in prefect_speedups.PATCHES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

marked = []
for target in prefect_speedups.PATCHES:
    module = importlib.import_module(target)
    for name, value in vars(module).items():
        if getattr(value, prefect_speedups.MARK, False):
            marked.append(f"{target}.{name}")
        if isinstance(value, type) and value.__module__ == target:
            marked += [
                f"{target}.{name}.{attr}" for attr, v in vars(value).items() if getattr(v, prefect_speedups.MARK, False)
            ]
print(
    json.dumps({"marked": marked, "replaced": len(prefect_speedups._REPLACED), "status": prefect_speedups.describe()})
)
