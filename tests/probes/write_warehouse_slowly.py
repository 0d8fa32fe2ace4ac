"""A slow writer of the DuckDB file in argv[1], under the writer lock as "slow-writer": creates t
with x = 1, says "writing", takes two seconds, then adds x = 2."""

import sys
import time

import duckdb

from workshop_lab.flow_tools.warehouse import writer_lock

with writer_lock(sys.argv[1], purpose="slow-writer"), duckdb.connect(sys.argv[1]) as con:
    con.execute("create or replace table t as select 1 as x")
    print("writing", flush=True)
    time.sleep(2)
    con.execute("insert into t values (2)")
