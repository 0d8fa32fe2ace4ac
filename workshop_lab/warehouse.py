"""The lab's DuckDB warehouse: where its files are, and one writer at a time.

DuckDB lets one process write a database file; a second process that opens it fails with
"Could not set lock on file". Two flows that write at once (the ELT pipeline and the workflow
analytics, say) must neither fail nor corrupt anything, so every writer holds `writer_lock(path)`
while it has the file open for writing. The lock is an advisory `flock` on `<file>.lock`: it
works across processes and across the lab's containers (they share the volume and the kernel),
and the kernel releases it when its holder dies, so a crashed flow never leaves the file locked.

A writer that finds the lock taken waits for it, saying who holds it; past its timeout it raises
`WarehouseLocked`, a clear message that the task's retries turn into a retry.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

DEFAULT_WAIT_SECONDS = 600.0


def warehouse_path() -> Path:
    """The warehouse file (LAB_WAREHOUSE_PATH, set for every lab process that runs flows)."""
    default = Path(tempfile.gettempdir()) / "workflow-lab" / "warehouse.duckdb"
    return Path(os.environ.get("LAB_WAREHOUSE_PATH") or default)


def airbyte_raw_path() -> Path:
    """The raw Airbyte tables' own file, beside the warehouse: the loader is its only writer."""
    return warehouse_path().with_name("airbyte_raw.duckdb")


class WarehouseLocked(RuntimeError):
    """Another process held the warehouse's writer lock for longer than we were willing to wait."""


def _lock_file(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock")


def lock_holder(db_path: Path) -> dict | None:
    """Who holds (or last held) the writer lock, as its holder wrote it; None if nobody wrote."""
    try:
        text = _lock_file(db_path).read_text().strip()
        return json.loads(text) if text else None
    except (OSError, ValueError):
        return None


def _describe(holder: dict | None) -> str:
    if not holder:
        return "another process"
    return f"{holder.get('purpose', 'a writer')} (pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('since')})"


@contextlib.contextmanager
def writer_lock(
    db_path: Path | str,
    purpose: str,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
    poll_seconds: float = 0.2,
    log: Callable[[str], None] = print,
) -> Iterator[None]:
    """Hold the one-writer lock of `db_path` for the block; wait up to `wait_seconds` for it."""
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = _lock_file(db_path)
    handle = open(lock_path, "a+")
    try:
        deadline = time.monotonic() + wait_seconds
        announced = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = lock_holder(db_path)
                if time.monotonic() >= deadline:
                    raise WarehouseLocked(
                        f"{db_path.name} is being written by {_describe(holder)}; waited {wait_seconds:.0f} s "
                        f"for it to finish. DuckDB allows one writer per file: retry when that run is done "
                        f"(or stop it in the Prefect UI). Lock file: {lock_path}"
                    ) from None
                if not announced:
                    log(f"{db_path.name} is being written by {_describe(holder)}: waiting for it (up to {wait_seconds:.0f} s)")
                    announced = True
                time.sleep(poll_seconds)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"purpose": purpose, "pid": os.getpid(), "host": socket.gethostname(),
                                 "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}))
        handle.flush()
        if announced:
            log(f"{db_path.name}: got the writer lock")
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
