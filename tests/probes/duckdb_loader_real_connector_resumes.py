"""The installed source-faker synced for real across about 10 chunks, twice: the second run resumes
from the state the first saved; prints per run what was emitted, the chunks and the row counts."""

import json
import sys
from pathlib import Path

import yaml
from duckdb_loader_setup import AIRBYTE, catalog, dl, saved

dl.CHUNK_LINES = 700  # about 10 chunks for this sync
spec = yaml.safe_load((AIRBYTE / "source-faker.yaml").read_text())
config = {**spec["config"], "count": 3000}
plans = [dl.StreamPlan.from_catalog(catalog[s], spec["streams"][s]) for s in spec["streams"]]
exe = Path(sys.executable).with_name("source-faker")
out = {}
for attempt in ("first", "second"):
    raw = dl.RawTables(Path("airbyte_raw.duckdb"), "raw", "source-faker", plans)
    result = dl.run_connector(
        exe,
        config,
        dl.configured_catalog(plans, saved["catalog"], False),
        raw.saved_state(),
        raw,
        Path("staging"),
        log=lambda line: None,
    )
    counts = {
        p.name: raw.con.execute(f"select count(*), count(distinct id) from raw.{p.name}").fetchone() for p in plans
    }
    out[attempt] = {"emitted": result.emitted, "chunks": result.chunks, "counts": counts}
    raw.close()
out["staging_left"] = sorted(str(p) for p in Path("staging").rglob("*"))
print(json.dumps(out))
