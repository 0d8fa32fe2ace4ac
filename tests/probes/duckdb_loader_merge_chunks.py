"""Two chunks into raw.products: merged on the key, null keys kept, a value that does not fit its
column NULLed and flagged; prints the counts, the rows and the saved state as JSON."""

import json
from pathlib import Path

from duckdb_loader_setup import catalog, dl, sync


def record(data, at):
    return json.dumps({"type": "RECORD", "record": {"stream": "products", "data": data, "emitted_at": at}})


plans = [dl.StreamPlan.from_catalog(catalog["products"], sync)]
raw = dl.RawTables(Path("airbyte_raw.duckdb"), "raw", "source-faker", plans)
state = {
    "products": {"type": "STREAM", "stream": {"stream_descriptor": {"name": "products"}, "stream_state": {"n": 1}}}
}
Path("c1.jsonl").write_text(
    "\n".join(
        [
            record({"id": 1, "make": "Mazda", "price": 10, "year": 2020}, 1000),
            record({"id": 2, "make": "Kia", "price": "cheap", "year": 2021}, 1000),
            record({"id": None, "make": "nobody", "price": 1}, 1000),
            record({"id": None, "make": "nobody either", "price": 2}, 1000),
        ]
    )
    + "\n"
)
first = raw.merge_chunk(Path("c1.jsonl"), state)
Path("c2.jsonl").write_text(
    record({"id": 1, "make": "Mazda", "price": 12, "year": 2020}, 2000)
    + "\n"
    + record({"id": 1, "make": "Mazda", "price": 13, "year": 2020}, 2001)
    + "\n"
)
second = raw.merge_chunk(Path("c2.jsonl"), {})
rows = raw.con.execute(
    "select id, make, price::double, _airbyte_meta::varchar from raw.products order by id, make"
).fetchall()
print(json.dumps({"first": first, "second": second, "rows": rows, "state": raw.saved_state()}))
