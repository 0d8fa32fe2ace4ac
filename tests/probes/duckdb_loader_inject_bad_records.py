"""extract_load.inject_faults on the raw tables the loader made: a sync that loads one new user,
then an incremental sync that loads nothing and asks for 10 bad records, then a stream with no
rows; prints what each injected, the rows and the fault log as JSON."""

import json
from pathlib import Path

from duckdb_loader_setup import catalog, dl, sync

# isort: split
import extract_load as el  # from airbyte/, which duckdb_loader_setup (imported first) put on sys.path


def record(stream, data, at):
    return json.dumps({"type": "RECORD", "record": {"stream": stream, "data": data, "emitted_at": at}})


plans = [dl.StreamPlan.from_catalog(catalog[s], sync) for s in ("users", "purchases")]
raw = dl.RawTables(Path("airbyte_raw.duckdb"), "raw", "source-faker", plans)
sql = el.Sql(raw.con, duckdb=True)
streams = ["users", "purchases"]


def sync_chunk(lines, inject):
    before = el.raw_counts(sql, "raw", streams)
    if lines:
        Path("chunk.jsonl").write_text("\n".join(lines) + "\n")
        raw.merge_chunk(Path("chunk.jsonl"), {})
    loaded = el.rows_loaded_since(sql, "raw", streams, before)
    return before, loaded, el.inject_faults(sql, "raw", inject, before, loaded)


def user(i, at):
    return record("users", {"id": i, "age": 30, "height": "1.80"}, at)


def purchase(i, at):
    return record("purchases", {"id": i, "user_id": 1, "product_id": 1}, at)


sync_chunk([user(1, 1000), user(2, 1000), user(3, 1000), purchase(1, 1000), purchase(2, 1000)], 0)
_, new_user_loaded, new_user = sync_chunk([user(4, 2000)], 1)
ids_before = {s: [r[0] for r in raw.con.execute(f"select _airbyte_raw_id from raw.{s}").fetchall()] for s in streams}
before, loaded, resent = sync_chunk([], 10)
rows = {
    s: raw.con.execute(
        f"select id, age, height, _airbyte_raw_id, _airbyte_extracted_at::varchar from raw.{s}"
        if s == "users"
        else f"select id, user_id, product_id, _airbyte_raw_id, _airbyte_extracted_at::varchar from raw.{s}"
    ).fetchall()
    for s in streams
}
logged = raw.con.execute("select stream, raw_id, fault from raw._lab_injected_faults").fetchall()
products_only = el.inject_faults(sql, "raw", 3, {"products": {"rows": 0, "latest_extracted_at": None}}, {"products": 0})
print(
    json.dumps(
        {
            "new_user": new_user,
            "new_user_loaded": new_user_loaded,
            "loaded": loaded,
            "before_latest": str(before["users"]["latest_extracted_at"]),
            "ids_before": ids_before,
            "resent": resent,
            "rows": rows,
            "logged": logged,
            "products_only": products_only,
        },
        default=str,
    )
)
