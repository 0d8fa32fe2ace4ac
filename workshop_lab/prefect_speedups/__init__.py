"""The lab's speed-ups for Prefect 3.9, installed in every process of the lab's venvs.

- `tls_cache`: one TLS context per process for Prefect's API clients, not one per client.
- `context_cache`: the settings context serialized once per flow process and rebuilt once
  per Dask worker, not once per task run (most of Prefect-on-Dask's per-task cost).
- `heartbeat_wait`: a flow run ends when its work does, not up to a second later.
- `dask_submit`: Dask names each Prefect task run's key without hashing its whole payload
  (about half of the flow process's per-task cost on Dask).
- `block_secrets_cache`: a block class's secret fields looked up once, not on every
  dump (every task run a flow submits to Dask dumps its result storage block).
- `event_ordering` (the server; not a speed-up but a wait): a run's Crashed event after a
  server restart reaches the automations in 30 s, not 15 minutes.
What each changes, where, and what it gains: docs/prefect-speedups.md.

A `.pth` line in the lab's venvs imports this module (`./lab` writes it; so does the image). It
installs an import hook (`_PatchAfterImport`) and nothing else: each patch is applied right after Prefect's
own module loads, so plain Python start-up imports no Prefect. The patches are applied only on the
versions they were written for (`WRITTEN_FOR`); on any other, none is applied and the process says
so once on stderr. A patch that fails to apply is undone (Prefect's own code runs there) with a line
on stderr: a speed-up must never break Prefect. Switches:
- `LAB_PREFECT_SPEEDUPS=0`: none of them (stock Prefect, as bench/dask_overhead.py's baseline runs it).
- `LAB_PREFECT_SPEEDUPS_STRICT=1` (CI): a version mismatch or a patch that fails to apply raises
  `SpeedupError`, so that the import of Prefect's module fails, in a flow process as in a Dask worker.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys
import threading
from collections.abc import Mapping

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
# The distributions the patches were written and reviewed for (requirements.lock). On an upgrade,
# tests/test_speedup_guards.py says which patched function changed: review it, then change these.
WRITTEN_FOR = {"prefect": "3.9.1", "prefect-dask": "0.3.7"}
# Carried by every replacement: what tells a patched attribute from Prefect's own.
MARK = "_lab_speedup"
PREFIX = "workshop_lab.prefect_speedups"


class SpeedupError(RuntimeError):
    """A speed-up that could not be applied, raised instead of a warning in strict mode."""


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    return (os.environ if environ is None else environ).get("LAB_PREFECT_SPEEDUPS", "1") != "0"


def strict(environ: Mapping[str, str] | None = None) -> bool:
    return (os.environ if environ is None else environ).get("LAB_PREFECT_SPEEDUPS_STRICT", "0") == "1"


# (owner, attribute, Prefect's original, the lab's replacement) for every attribute a patch replaced.
_REPLACED: list[tuple[object, str, object, object]] = []
# The replacements of the patch being applied in this thread (a hook runs in the importing thread).
_applying = threading.local()
_mismatch: str | None = None  # None until checked, then "" (versions as written for) or what differs
_warned_lock = threading.Lock()
_warned = False


def replace(owner: object, attribute: str, replacement: object) -> None:
    """What a patch calls to put its replacement in place, so that `set_applied` can undo it.
    An attribute already replaced keeps its replacement (a patch never wraps its own wrapper)."""
    original = getattr(owner, attribute)
    if getattr(original, MARK, False):
        return
    setattr(replacement, MARK, True)
    entry = (owner, attribute, original, replacement)
    _REPLACED.append(entry)
    getattr(_applying, "entries", []).append(entry)
    setattr(owner, attribute, replacement)


def set_applied(applied: bool) -> None:
    """Switch every applied patch off (Prefect's originals back) and on again, in this process
    (bench/dask_overhead.py compares stock Prefect and the lab's in one run)."""
    for owner, attribute, original, replacement in _REPLACED:
        setattr(owner, attribute, replacement if applied else original)


def installed_versions() -> dict[str, str | None]:
    """The installed version of each distribution in `WRITTEN_FOR` (None: not installed)."""
    from importlib import metadata

    found: dict[str, str | None] = {}
    for distribution in WRITTEN_FOR:
        try:
            found[distribution] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            found[distribution] = None
    return found


def version_mismatch() -> str:
    """ "" when every installed distribution is the version the patches were written for, else what
    differs ("prefect 3.10.0"). A distribution that is not installed has nothing to patch."""
    global _mismatch
    if _mismatch is None:  # read once per process; two threads at once read the same answer
        _mismatch = ", ".join(
            f"{name} {version}"
            for name, version in installed_versions().items()
            if version is not None and version != WRITTEN_FOR[name]
        )
    return _mismatch


def _written_for() -> str:
    return " and ".join(f"{name} {version}" for name, version in WRITTEN_FOR.items())


def _skip_for_version(mismatch: str) -> None:
    global _warned
    message = (
        f"{PREFIX}: none applied, Prefect runs stock: they were written for {_written_for()}, "
        f"this venv has {mismatch} (review them: docs/prefect-speedups.md; silence: LAB_PREFECT_SPEEDUPS=0)"
    )
    if strict():
        raise SpeedupError(message + " [LAB_PREFECT_SPEEDUPS_STRICT=1]")
    with _warned_lock:
        first, _warned = not _warned, True
    if first:
        print(message, file=sys.stderr, flush=True)


def _undo(entries: list[tuple[object, str, object, object]]) -> None:
    for entry in reversed(entries):
        owner, attribute, original, _ = entry
        setattr(owner, attribute, original)
        if entry in _REPLACED:
            _REPLACED.remove(entry)


def apply(target: str, module) -> None:
    """Apply the patch for `target` to its freshly loaded module (the import hook calls this)."""
    mismatch = version_mismatch()
    if mismatch:
        _skip_for_version(mismatch)
        return
    outer = getattr(_applying, "entries", None)  # a patch's own imports may load another target
    _applying.entries = entries = []
    try:
        speedup = importlib.import_module(PATCHES[target])
        if getattr(speedup, "enabled", lambda: True)():
            speedup.patch(module)
    except Exception as error:
        _undo(entries)
        message = f"{PATCHES[target]}: not applied to {target}, Prefect's own code runs there ({error!r})"
        if strict():
            raise SpeedupError(message + " [LAB_PREFECT_SPEEDUPS_STRICT=1]") from error
        print(message, file=sys.stderr, flush=True)
    finally:
        if outer is None:
            del _applying.entries
        else:
            outer.extend(entries)
            _applying.entries = outer


def describe(environ: Mapping[str, str] | None = None) -> str:
    """One line for `./lab status`: whether the lab's processes (this venv, `environ`) run a patched
    Prefect, and the switch that turns the patches off."""
    if not enabled(environ):
        return "Prefect speed-ups: off (LAB_PREFECT_SPEEDUPS=0): Prefect runs stock"
    mismatch = version_mismatch()
    if mismatch:
        return (
            f"Prefect speed-ups: skipped, written for {_written_for()}, this venv has {mismatch}: "
            "Prefect runs stock (silence the warning: LAB_PREFECT_SPEEDUPS=0)"
        )
    mode = ", strict" if strict(environ) else ""
    return (
        f"Prefect speed-ups: on{mode} ({len(set(PATCHES.values()))} patches to Prefect's internals, "
        "docs/prefect-speedups.md); turn them off with LAB_PREFECT_SPEEDUPS=0"
    )


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    """Lets each target module load as usual, then patches it, once, in the importing thread.

    Kept here rather than wrapt's post-import hooks: wrapt 2.5.2's finder calls
    `importlib.util.find_spec(name)`, which waits for the parent package's import lock while the
    import system holds the child module's, so a process whose threads import Prefect's modules for
    the first time at once can hang (reproduced: tests/probes/speedups_version_mismatch.py
    --threads). This finder stays in `sys.meta_path` (no removing and re-inserting itself, the race
    of the one before it) and asks `PathFinder` directly, with the path it is given: no import lock
    of its own, no recursion into the meta path.
    """

    def __init__(self, targets: set[str]) -> None:
        self.pending = targets
        self.lock = threading.Lock()

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.pending:
            return None
        with self.lock:  # one thread claims each target
            if fullname not in self.pending:
                return None
            self.pending.discard(fullname)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        exec_module = spec.loader.exec_module

        def exec_and_patch(module) -> None:
            exec_module(module)
            apply(fullname, module)

        spec.loader.exec_module = exec_and_patch  # this spec's own loader instance
        return spec


def install() -> None:
    if not enabled():
        return
    for target in PATCHES:
        if target in sys.modules:
            apply(target, sys.modules[target])
    pending = set(PATCHES) - set(sys.modules)
    if pending and not any(isinstance(finder, _PatchAfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PatchAfterImport(pending))


install()
