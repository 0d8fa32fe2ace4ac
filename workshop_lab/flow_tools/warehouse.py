"""The lab's DuckDB warehouse: where its files are, and one writer at a time.

DuckDB lets one process write a database file; a second process that opens it fails with
"Could not set lock on file". Two flows that write at once (the ELT pipeline and the workflow
analytics, say) must neither fail nor corrupt anything, so every writer holds `writer_lock(path)`
while it has the file open for writing. The lock is an advisory `flock` on `<file>.lock`: it
works across processes and across the lab's containers (they share the volume and the kernel),
and the kernel releases it when its holder dies, so a crashed flow never leaves the file locked.

A writer that finds the lock taken waits for it, saying who holds it; past its timeout it raises
`WarehouseLocked`, a clear message that the task's retries turn into a retry.

A reader (`./lab sql`, `python -m workshop_lab.flow_tools.warehouse QUERY`) takes the same lock shared: DuckDB
refuses even a read-only connection while a writer has the file open, so a query waits for the
writer to finish instead of failing with "Conflicting lock is held".
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


def _wait_for_lock(
    handle, mode: int, db_path: Path, wait_seconds: float, poll_seconds: float, log: Callable[[str], None]
) -> bool:
    """Take `mode` (LOCK_EX or LOCK_SH) on the lock file; True if we had to wait for a holder."""
    lock_path = _lock_file(db_path)
    deadline = time.monotonic() + wait_seconds
    announced = False
    while True:
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
            return announced
        except BlockingIOError:
            holder = lock_holder(db_path)
            if time.monotonic() >= deadline:
                raise WarehouseLocked(
                    f"{db_path.name} is being written by {_describe(holder)}; waited {wait_seconds:.0f} s "
                    f"for it to finish. DuckDB allows one writer per file: retry when that run is done "
                    f"(or stop it in the Prefect UI). Lock file: {lock_path}"
                ) from None
            if not announced:
                log(
                    f"{db_path.name} is being written by {_describe(holder)}: waiting for it (up to {wait_seconds:.0f} s)"
                )
                announced = True
            time.sleep(poll_seconds)


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
    handle = open(_lock_file(db_path), "a+")
    try:
        announced = _wait_for_lock(handle, fcntl.LOCK_EX, db_path, wait_seconds, poll_seconds, log)
        handle.seek(0)
        handle.truncate()
        handle.write(
            json.dumps(
                {
                    "purpose": purpose,
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                }
            )
        )
        handle.flush()
        if announced:
            log(f"{db_path.name}: got the writer lock")
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


class WarehouseQueryError(RuntimeError):
    """A query a learner typed could not run: the message says why in one line."""


def query_text(
    sql: str, db_path: Path | str | None = None, wait_seconds: float = 120.0, log: Callable[[str], None] = print
) -> str:
    """Run one query read-only against the warehouse, after any writer is done; the result as a table."""
    import duckdb

    db_path = Path(db_path or warehouse_path())
    if not db_path.exists():
        raise WarehouseQueryError(
            f"there is no warehouse yet at {db_path}: a run of elt/elt or "
            "workflow-analytics creates it (./lab run elt/elt)"
        )
    with open(_lock_file(db_path), "a+") as handle:
        _wait_for_lock(handle, fcntl.LOCK_SH, db_path, wait_seconds, 0.2, log)
        try:
            with duckdb.connect(str(db_path), read_only=True) as con:
                relation = con.sql(sql)
                return "(done)" if relation is None else str(relation)
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0]
            raise WarehouseQueryError(
                f'{first} (query: {sql}). List the tables with: ./lab sql "show all tables"'
            ) from None


def main(argv: list[str] | None = None) -> int:
    """`python -m workshop_lab.flow_tools.warehouse QUERY`: what `./lab sql` runs inside the Docker lab."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print('usage: python -m workshop_lab.flow_tools.warehouse "select ..."', file=sys.stderr)
        return 2
    try:
        print(query_text(args[0], log=lambda line: print(line, file=sys.stderr)))
        return 0
    except (WarehouseQueryError, WarehouseLocked) as exc:
        print(f"lab sql: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
