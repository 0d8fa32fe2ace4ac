"""A chunk whose last line is cut off mid-record: merge_chunk must raise DuckDB's own error for it
(anything else propagates and fails the probe) and leave neither rows nor state; prints what it saw."""

import json
from pathlib import Path

import duckdb
from duckdb_loader_setup import catalog, dl, sync

plans = [dl.StreamPlan.from_catalog(catalog["products"], sync)]
raw = dl.RawTables(Path("airbyte_raw.duckdb"), "raw", "source-faker", plans)
Path("bad.jsonl").write_text(
    '{"type":"RECORD","record":{"stream":"products","data":{"id":1},"emitted_at":1}}\n'
    '{"type":"RECORD","record":{"stream":"products","data":{"id":2},"emi\n'
)
state = {
    "products": {"type": "STREAM", "stream": {"stream_descriptor": {"name": "products"}, "stream_state": {"n": 9}}}
}
try:
    raw.merge_chunk(Path("bad.jsonl"), state)
    error = None
except duckdb.InvalidInputException as exc:
    error = str(exc)
rows = raw.con.execute("select count(*) from raw.products").fetchone()[0]
print(json.dumps({"error": error, "rows": rows, "state": raw.saved_state()}))
