"""
# Exercise 13 · ELT: your starting point (flows/exercises/13_elt.md)

Run `./lab run elt/elt` first (it fills the warehouse). Then copy this, and make `./lab check 13` pass:
    mkdir -p flows/mine && cp flows/exercises/starters/13_elt.py flows/mine/
    .venv/bin/python flows/mine/13_elt.py
    ./lab check 13
"""

from __future__ import annotations

from typing import Any

import duckdb
from prefect import flow, task
from prefect.artifacts import create_table_artifact

from workshop_lab.flow_tools.warehouse import airbyte_raw_path, warehouse_path

STREAMS = ["users", "products", "purchases"]


@task
def layer_counts() -> list[dict[str, Any]]:
    """Per stream: raw rows, staged rows, quarantined rows."""
    # TODO: open the files read-only, under the warehouse's writer lock (workshop_lab.flow_tools.warehouse.writer_lock)
    with duckdb.connect(str(warehouse_path()), read_only=True) as con:
        con.execute(f"attach '{airbyte_raw_path()}' as airbyte_raw (read_only)")
        # TODO: the quarantined rows per stream (quarantine.quarantined_records)
        return [
            {
                "stream": s,
                "raw": con.execute(f"select count(*) from airbyte_raw.raw.{s}").fetchone()[0],
                "staged": con.execute(f"select count(*) from staging.stg_{s}").fetchone()[0],
                "quarantined": 0,
            }
            for s in STREAMS
        ]


@flow(name="elt-audit", log_prints=True)
def elt_audit() -> list[dict[str, Any]]:
    """Publish raw, staged and quarantined rows per stream; fail naming every stream that lost rows."""
    rows = layer_counts()
    create_table_artifact(key="elt-audit", table=rows)
    # TODO: fail the run, naming each stream where raw != staged + quarantined
    return rows


if __name__ == "__main__":
    elt_audit()
