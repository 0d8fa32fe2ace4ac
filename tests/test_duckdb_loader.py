"""airbyte/duckdb_loader.py, the ELT pipeline's loader, in the Airbyte environment's own Python and
DuckDB (as the flow runs it): merge on the primary key, nothing dropped, state committed with its
records, and the real source-faker synced across many chunks.

The scenarios run as scripts in `.venv-airbyte/` (DuckDB 1.4 there, 2.0 in the lab's venv) and print
JSON that the tests check."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

from workshop_lab.stack.settings import REPO_ROOT

AIRBYTE = REPO_ROOT / "airbyte"
AIRBYTE_PYTHON = REPO_ROOT / ".venv-airbyte" / "bin" / "python"

PRELUDE = f"""
import json, sys
from pathlib import Path
sys.path.insert(0, {str(AIRBYTE)!r})
import duckdb_loader as dl
saved = json.loads(Path({str(AIRBYTE / "source-faker.metadata.json")!r}).read_text())
catalog = {{s["name"]: s for s in saved["catalog"]["streams"]}}
sync = {{"primary_key": "id", "cursor_field": "updated_at"}}
"""


def run_in_airbyte_venv(script: str, tmp_path: Path) -> dict:
    done = subprocess.run([str(AIRBYTE_PYTHON), "-c", PRELUDE + textwrap.dedent(script)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_chunks_merge_on_the_key_keep_null_keys_and_flag_values_that_do_not_fit(tmp_path):
    result = run_in_airbyte_venv("""
        def record(data, at):
            return json.dumps({"type": "RECORD", "record": {"stream": "products", "data": data, "emitted_at": at}})
        plans = [dl.StreamPlan.from_catalog(catalog["products"], sync)]
        raw = dl.RawTables(Path("airbyte_raw.duckdb"), "raw", "source-faker", plans)
        state = {"products": {"type": "STREAM", "stream": {"stream_descriptor": {"name": "products"}, "stream_state": {"n": 1}}}}
        Path("c1.jsonl").write_text("\\n".join([
            record({"id": 1, "make": "Mazda", "price": 10, "year": 2020}, 1000),
            record({"id": 2, "make": "Kia", "price": "cheap", "year": 2021}, 1000),
            record({"id": None, "make": "nobody", "price": 1}, 1000),
            record({"id": None, "make": "nobody either", "price": 2}, 1000),
        ]) + "\\n")
        first = raw.merge_chunk(Path("c1.jsonl"), state)
        Path("c2.jsonl").write_text(record({"id": 1, "make": "Mazda", "price": 12, "year": 2020}, 2000) + "\\n"
                                    + record({"id": 1, "make": "Mazda", "price": 13, "year": 2020}, 2001) + "\\n")
        second = raw.merge_chunk(Path("c2.jsonl"), {})
        rows = raw.con.execute("select id, make, price::double, _airbyte_meta::varchar from raw.products order by id, make").fetchall()
        print(json.dumps({"first": first, "second": second, "rows": rows, "state": raw.saved_state()}))
    """, tmp_path)
    assert result["first"] == {"products": 4} and result["second"] == {"products": 2}
    rows = {(r[0], r[1]): r for r in result["rows"]}
    assert len(result["rows"]) == 4, result["rows"]  # id 1 once (its newest version), id 2, both null keys
    assert rows[(1, "Mazda")][2] == 13.0
    assert rows[(None, "nobody")] and rows[(None, "nobody either")]
    meta = json.loads(rows[(2, "Kia")][3])
    assert rows[(2, "Kia")][2] is None
    assert meta == {"changes": [{"field": "price", "change": "NULLED", "reason": "DESTINATION_SERIALIZATION_ERROR"}]}
    assert result["state"] == [{"type": "STREAM", "stream": {"stream_descriptor": {"name": "products"},
                                                             "stream_state": {"n": 1}}}]


def test_a_chunk_that_fails_leaves_neither_its_rows_nor_its_state(tmp_path):
    result = run_in_airbyte_venv("""
        plans = [dl.StreamPlan.from_catalog(catalog["products"], sync)]
        raw = dl.RawTables(Path("airbyte_raw.duckdb"), "raw", "source-faker", plans)
        Path("bad.jsonl").write_text('{"type":"RECORD","record":{"stream":"products","data":{"id":1},"emitted_at":1}}\\n'
                                     '{"type":"RECORD","record":{"stream":"products","data":{"id":2},"emi\\n')
        state = {"products": {"type": "STREAM", "stream": {"stream_descriptor": {"name": "products"}, "stream_state": {"n": 9}}}}
        try:
            raw.merge_chunk(Path("bad.jsonl"), state)
            error = None
        except Exception as exc:
            error = type(exc).__name__
        rows = raw.con.execute("select count(*) from raw.products").fetchone()[0]
        print(json.dumps({"error": error, "rows": rows, "state": raw.saved_state()}))
    """, tmp_path)
    assert result["error"], "a malformed line must fail the chunk, not vanish"
    assert result["rows"] == 0 and result["state"] == []


def test_the_real_connector_syncs_across_many_chunks_then_resumes_from_its_state(tmp_path):
    result = run_in_airbyte_venv(f"""
        import yaml
        dl.CHUNK_LINES = 700   # about 10 chunks for this sync
        spec = yaml.safe_load(Path({str(AIRBYTE / "source-faker.yaml")!r}).read_text())
        config = {{**spec["config"], "count": 3000}}
        plans = [dl.StreamPlan.from_catalog(catalog[s], spec["streams"][s]) for s in spec["streams"]]
        exe = Path(sys.executable).with_name("source-faker")
        out = {{}}
        for attempt in ("first", "second"):
            raw = dl.RawTables(Path("airbyte_raw.duckdb"), "raw", "source-faker", plans)
            result = dl.run_connector(exe, config, dl.configured_catalog(plans, saved["catalog"], False), raw.saved_state(),
                                      raw, Path("staging"), log=lambda line: None)
            counts = {{p.name: raw.con.execute(f"select count(*), count(distinct id) from raw.{{p.name}}").fetchone() for p in plans}}
            out[attempt] = {{"emitted": result.emitted, "chunks": result.chunks, "counts": counts}}
            raw.close()
        out["staging_left"] = sorted(str(p) for p in Path("staging").rglob("*"))
        print(json.dumps(out))
    """, tmp_path)
    first, second = result["first"], result["second"]
    assert first["emitted"] == {"users": 3000, "purchases": 3000, "products": 100}, first
    assert first["chunks"] >= 9, first
    assert first["counts"] == {"users": [3000, 3000], "purchases": [3000, 3000], "products": [100, 100]}, first
    assert sum(second["emitted"].values()) == 0 and second["counts"] == first["counts"], second
    assert result["staging_left"] == [], "chunk files must be deleted once merged"


def test_bad_records_go_into_this_runs_records_first_then_into_earlier_ones_re_sent_as_new_versions(tmp_path):
    """extract_load.inject_faults on the raw tables the loader made: a sync that loaded one new user
    corrupts that user (not an earlier one); an incremental sync that loaded nothing re-sends
    earlier records as corrupted new versions (new raw id, this run's time, same key, no extra row),
    and when the records run out it injects fewer and says how many, per stream."""
    result = run_in_airbyte_venv("""
        import extract_load as el
        def record(stream, data, at):
            return json.dumps({"type": "RECORD", "record": {"stream": stream, "data": data, "emitted_at": at}})
        plans = [dl.StreamPlan.from_catalog(catalog[s], sync) for s in ("users", "purchases")]
        raw = dl.RawTables(Path("airbyte_raw.duckdb"), "raw", "source-faker", plans)
        sql = el.Sql(raw.con, duckdb=True)
        streams = ["users", "purchases"]
        def sync(lines, inject):
            before = el.raw_counts(sql, "raw", streams)
            if lines:
                Path("chunk.jsonl").write_text("\\n".join(lines) + "\\n")
                raw.merge_chunk(Path("chunk.jsonl"), {})
            loaded = el.rows_loaded_since(sql, "raw", streams, before)
            return before, loaded, el.inject_faults(sql, "raw", inject, before, loaded)
        user = lambda i, at: record("users", {"id": i, "age": 30, "height": "1.80"}, at)
        purchase = lambda i, at: record("purchases", {"id": i, "user_id": 1, "product_id": 1}, at)
        sync([user(1, 1000), user(2, 1000), user(3, 1000), purchase(1, 1000), purchase(2, 1000)], 0)
        _, new_user_loaded, new_user = sync([user(4, 2000)], 1)
        ids_before = {s: [r[0] for r in raw.con.execute(f"select _airbyte_raw_id from raw.{s}").fetchall()] for s in streams}
        before, loaded, resent = sync([], 10)
        rows = {s: raw.con.execute(f"select id, age, height, _airbyte_raw_id, _airbyte_extracted_at::varchar from raw.{s}"
                                   if s == "users" else f"select id, user_id, product_id, _airbyte_raw_id, "
                                   f"_airbyte_extracted_at::varchar from raw.{s}").fetchall() for s in streams}
        logged = raw.con.execute("select stream, raw_id, fault from raw._lab_injected_faults").fetchall()
        products_only = el.inject_faults(sql, "raw", 3, {"products": {"rows": 0, "latest_extracted_at": None}}, {"products": 0})
        print(json.dumps({"new_user": new_user, "new_user_loaded": new_user_loaded, "loaded": loaded,
                          "before_latest": str(before["users"]["latest_extracted_at"]), "ids_before": ids_before,
                          "resent": resent, "rows": rows, "logged": logged, "products_only": products_only}, default=str))
    """, tmp_path)
    new_user, resent, rows = result["new_user"], result["resent"], result["rows"]
    # A sync that loaded one new user: the fault goes into that user, not into one loaded earlier.
    assert result["new_user_loaded"] == {"users": 1, "purchases": 0}
    (fault,) = new_user["faults"]
    assert fault["new_version"] is False and fault["fault"] == "null key: id", new_user
    assert [r for r in rows["users"] if r[3] == fault["raw_id"]][0][0] is None
    assert new_user["message"] == "inject_bad_records=1: corrupted 1 record this run loaded (users 1)"
    # Nothing new loaded: earlier records, re-sent as corrupted new versions, until none is left.
    assert result["loaded"] == {"users": 0, "purchases": 0}
    assert len(resent["faults"]) == 5 and all(f["new_version"] for f in resent["faults"]), resent
    assert resent["not_injected"] == {"users": 3, "purchases": 2}, resent
    assert "this run loaded nothing new" in resent["message"] and "Only 5 of the 10 could be injected" in resent["message"]
    assert len(rows["users"]) == 4 and len(rows["purchases"]) == 2, "a new version replaces its record, never adds one"
    by_raw_id = {r[3]: r for s in rows for r in rows[s]}
    for f in resent["faults"]:
        assert f["raw_id"] not in result["ids_before"][f["stream"]], "a re-sent version gets a new raw id"
        assert by_raw_id[f["raw_id"]][4] > result["before_latest"], "and this run's extraction time"
    kept_keys = {r[0]: (r[1], r[2]) for r in rows["users"] if r[0] is not None}  # their key kept, a field corrupted
    assert set(kept_keys) < {1, 2, 3} and sorted(kept_keys.values()) == [(-7, "1.80"), (30, "tall")], rows["users"]
    assert len(result["logged"]) == 6 and {tuple(r) for r in result["logged"]} >= {
        (f["stream"], f["raw_id"], f["fault"]) for f in resent["faults"] + new_user["faults"]}
    assert result["products_only"]["faults"] == [] and "nothing injected" in result["products_only"]["message"]
