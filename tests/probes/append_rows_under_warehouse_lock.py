"""Writer number argv[2]: appends five rows (writer, n) to table t of the DuckDB file in argv[1],
each in its own connection under the warehouse writer lock."""

import sys

import duckdb

from workshop_lab.flow_tools.warehouse import writer_lock

for n in range(5):
    with writer_lock(sys.argv[1], purpose=f"writer {sys.argv[2]}"), duckdb.connect(sys.argv[1]) as con:
        con.execute("insert into t values (?, ?)", [int(sys.argv[2]), n])
