"""One writer at a time: the warehouse's writer lock (workshop_lab/flow_tools/warehouse.py) holds across
processes, makes a second writer wait and name the holder, gives up with a clear message, and is
released by the kernel when its holder dies (a crashed flow never leaves the file locked)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from workshop_lab.flow_tools.warehouse import WarehouseLocked, writer_lock

PROBES = Path(__file__).resolve().parent / "probes"


@pytest.fixture
def held_by_another_process(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    holder = subprocess.Popen(
        [sys.executable, str(PROBES / "hold_warehouse_lock.py"), str(path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    yield path, holder
    holder.kill()
    holder.wait()


def test_a_second_writer_waits_then_gives_up_naming_the_holder(held_by_another_process):
    path, holder = held_by_another_process
    said = []
    started = time.monotonic()
    with pytest.raises(WarehouseLocked) as error:
        with writer_lock(path, purpose="second", wait_seconds=1.5, log=said.append):
            pass
    assert time.monotonic() - started >= 1.5
    message = str(error.value)
    assert "holder-process" in message and f"pid {holder.pid}" in message and "retry" in message, message
    assert said and "waiting for it" in said[0], said


def test_the_lock_is_released_when_its_holder_dies(held_by_another_process):
    path, holder = held_by_another_process
    holder.kill()
    holder.wait()
    started = time.monotonic()
    with writer_lock(path, purpose="after the crash", wait_seconds=5):
        pass
    assert time.monotonic() - started < 2


def test_writers_in_turn_never_hit_duckdbs_own_file_lock(tmp_path):
    """Eight processes append to one DuckDB file at once, each under the lock: all rows arrive."""
    path = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(path)).execute("create table t (writer int, n int)").close()
    append_rows = str(PROBES / "append_rows_under_warehouse_lock.py")
    writers = [
        subprocess.Popen([sys.executable, append_rows, str(path), str(i)], stderr=subprocess.PIPE, text=True)
        for i in range(8)
    ]
    for writer in writers:
        assert writer.wait(120) == 0, writer.stderr.read()
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("select count(*), count(distinct (writer, n)) from t").fetchone() == (40, 40)


def test_lab_sql_waits_for_a_writer_then_reads_what_it_wrote(tmp_path):
    """`./lab sql` during a run that writes: DuckDB alone refuses the read-only connection
    ("Conflicting lock is held"); the query waits for the writer instead and sees its rows."""
    path = tmp_path / "home" / "warehouse" / "warehouse.duckdb"
    path.parent.mkdir(parents=True)
    writer = subprocess.Popen(
        [sys.executable, str(PROBES / "write_warehouse_slowly.py"), str(path)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout.readline().strip() == "writing"
    with pytest.raises(duckdb.IOException):
        duckdb.connect(str(path), read_only=True)
    env = {**os.environ, "LAB_HOME": str(tmp_path / "home")}
    query = subprocess.run(
        [sys.executable, "-m", "workshop_lab", "sql", "select sum(x) as total from t"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    writer.wait(timeout=30)
    assert query.returncode == 0, query.stderr
    assert "slow-writer" in query.stderr and "waiting for it" in query.stderr
    assert [line.strip("│ ") for line in query.stdout.strip().splitlines()][-2] == "3", query.stdout


def test_lab_sql_says_in_one_line_what_is_missing(tmp_path):
    env = {**os.environ, "LAB_HOME": str(tmp_path / "home")}
    none_yet = subprocess.run(
        [sys.executable, "-m", "workshop_lab", "sql", "select 1"], capture_output=True, text=True, env=env
    )
    assert none_yet.returncode == 1 and "no warehouse yet" in none_yet.stderr and "Traceback" not in none_yet.stderr
    path = tmp_path / "home" / "warehouse" / "warehouse.duckdb"
    path.parent.mkdir(parents=True)
    duckdb.connect(str(path)).close()
    no_table = subprocess.run(
        [sys.executable, "-m", "workshop_lab", "sql", "select * from nope"], capture_output=True, text=True, env=env
    )
    assert (
        no_table.returncode == 1 and "nope does not exist" in no_table.stderr and "show all tables" in no_table.stderr
    )
    assert len(no_table.stderr.strip().splitlines()) == 1, no_table.stderr
