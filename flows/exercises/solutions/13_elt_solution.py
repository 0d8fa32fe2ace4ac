"""
# Solution 13 · ELT: prove that nothing was lost between raw and staging

How to run it: after an ELT run (`./lab run elt/elt`), with the lab up:
`.venv/bin/python flows/exercises/solutions/13_elt_solution.py`. It reads the files the lab's
settings name (LAB_WAREHOUSE_PATH, and airbyte_raw.duckdb beside it), read-only, under their writer
locks, so it never disturbs an ELT run and never reads a half-written table.
"""

from __future__ import annotations

from typing import Any

import duckdb
from prefect import flow, task
from prefect.artifacts import create_table_artifact

from workshop_lab.flow_tools.warehouse import airbyte_raw_path, warehouse_path, writer_lock

STREAMS = ["users", "products", "purchases"]


@task
def layer_counts() -> list[dict[str, Any]]:
    """Per stream: raw rows, staged rows, quarantined rows (read-only, under the writer lock)."""
    with (
        writer_lock(warehouse_path(), purpose="elt-audit"),
        duckdb.connect(str(warehouse_path()), read_only=True) as con,
    ):
        con.execute(f"attach '{airbyte_raw_path()}' as airbyte_raw (read_only)")
        quarantined = dict(
            con.execute("select stream, count(*) from quarantine.quarantined_records group by stream").fetchall()
        )
        return [
            {
                "stream": s,
                "raw": con.execute(f"select count(*) from airbyte_raw.raw.{s}").fetchone()[0],
                "staged": con.execute(f"select count(*) from staging.stg_{s}").fetchone()[0],
                "quarantined": quarantined.get(s, 0),
            }
            for s in STREAMS
        ]


@flow(name="elt-audit", log_prints=True)
def elt_audit() -> list[dict[str, Any]]:
    """Publish raw, staged and quarantined rows per stream; fail naming every stream that lost rows."""
    rows = [{**r, "reconciles": r["raw"] == r["staged"] + r["quarantined"]} for r in layer_counts()]
    create_table_artifact(key="elt-audit", table=rows, description="raw = staged + quarantined, per stream.")
    broken = [
        f"{r['stream']}: {r['raw']} raw != {r['staged']} staged + {r['quarantined']} quarantined"
        for r in rows
        if not r["reconciles"]
    ]
    if broken:
        raise ValueError("rows were lost: " + "; ".join(broken))
    print("every stream reconciles: " + ", ".join(f"{r['stream']} {r['raw']}" for r in rows))
    return rows


if __name__ == "__main__":
    elt_audit()
