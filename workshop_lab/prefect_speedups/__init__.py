"""The lab's speed-ups for Prefect 3.9, installed in every process of the lab's venvs.

- `prefect_tls_cache`: one TLS context per process for Prefect's API clients, not one per client.
- `prefect_context_cache`: the settings context serialized once per flow process and rebuilt once
  per Dask worker, not once per task run (most of Prefect-on-Dask's per-task cost).
- `prefect_heartbeat_wait`: a flow run ends when its work does, not up to a second later.
- `prefect_dask_submit`: Dask names each Prefect task run's key without hashing its whole payload
  (about half of the flow process's per-task cost on Dask).
- `prefect_block_secrets_cache`: a block class's secret fields looked up once, not on every
  dump (every task run a flow submits to Dask dumps its result storage block).
- `prefect_event_ordering` (the server; not a speed-up but a wait): a run's Crashed event after a
  server restart reaches the automations in 30 s, not 15 minutes.

A `.pth` line in the lab's venvs imports this module (`./lab` writes it; so does the image). It
installs an import hook and nothing else: each patch is applied right after Prefect's own module
loads, so plain Python start-up costs nothing, and a patch that fails to apply leaves Prefect as
it is (with a line on stderr): a speed-up must never break Prefect. `LAB_PREFECT_SPEEDUPS=0`
installs none of them (stock Prefect, as bench/dask_overhead.py's baseline runs it).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys

# Prefect module -> the lab module whose `patch(module)` applies to it once it has loaded.
PATCHES = {
    "prefect.client.orchestration": "workshop_lab.prefect_speedups.tls_cache",
    "prefect.context": "workshop_lab.prefect_speedups.context_cache",
    "prefect.flow_engine": "workshop_lab.prefect_speedups.heartbeat_wait",
    "prefect_dask.client": "workshop_lab.prefect_speedups.dask_submit",
    "prefect.blocks.core": "workshop_lab.prefect_speedups.block_secrets_cache",
    "prefect.server.events.ordering.memory": "workshop_lab.prefect_speedups.event_ordering",
    "prefect.server.events.ordering.db": "workshop_lab.prefect_speedups.event_ordering",
}


def enabled() -> bool:
    return os.environ.get("LAB_PREFECT_SPEEDUPS", "1") != "0"


# (owner, attribute, Prefect's original, the lab's replacement) for every attribute a patch replaced.
_REPLACED: list[tuple[object, str, object, object]] = []
# Carried by every replacement: what tells a patched attribute from Prefect's own.
MARK = "_lab_speedup"


def replace(owner: object, attribute: str, replacement: object) -> None:
    """What a patch calls to put its replacement in place, so that `set_applied` can undo it.
    An attribute already replaced keeps its replacement (a patch never wraps its own wrapper)."""
    original = getattr(owner, attribute)
    if getattr(original, MARK, False):
        return
    setattr(replacement, MARK, True)
    _REPLACED.append((owner, attribute, original, replacement))
    setattr(owner, attribute, replacement)


def set_applied(applied: bool) -> None:
    """Switch every applied patch off (Prefect's originals back) and on again, in this process
    (bench/dask_overhead.py compares stock Prefect and the lab's in one run)."""
    for owner, attribute, original, replacement in _REPLACED:
        setattr(owner, attribute, replacement if applied else original)


def apply(target: str, module) -> None:
    try:
        speedup = importlib.import_module(PATCHES[target])
        if getattr(speedup, "enabled", lambda: True)():
            speedup.patch(module)
    except Exception as error:  # noqa: BLE001
        print(f"{PATCHES[target]}: not applied ({error!r})", file=sys.stderr)


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    """Lets each target module load as usual, then patches it (once)."""

    def __init__(self) -> None:
        self.pending = set(PATCHES) - set(sys.modules)

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.pending:
            return None
        self.pending.discard(fullname)
        sys.meta_path.remove(self)  # find the real spec without finding ourselves again
        try:
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        finally:
            if self.pending:
                sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return None
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            apply(fullname, module)

        spec.loader.exec_module = exec_and_patch
        return spec


def install() -> None:
    if not enabled():
        return
    for target in PATCHES:
        if target in sys.modules:
            apply(target, sys.modules[target])
    if any(target not in sys.modules for target in PATCHES) and \
            not any(isinstance(finder, _PatchAfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PatchAfterImport())


install()
