"""airbyte/duckdb_loader.py, the ELT pipeline's loader, in the Airbyte environment's own Python and
DuckDB (as the flow runs it): merge on the primary key, nothing dropped, state committed with its
records, and the real source-faker synced across many chunks.

The scenarios are scripts in tests/probes/duckdb_loader_*.py, run by `.venv-airbyte/`'s Python
(DuckDB 1.4 there, 2.0 in the lab's venv); each prints JSON that the tests check."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from workshop_lab.stack.settings import REPO_ROOT

AIRBYTE_PYTHON = REPO_ROOT / ".venv-airbyte" / "bin" / "python"
PROBES = Path(__file__).resolve().parent / "probes"


def run_in_airbyte_venv(probe: str, tmp_path: Path) -> dict:
    """Run tests/probes/<probe> in the Airbyte venv, in tmp_path; its last stdout line is JSON."""
    done = subprocess.run(
        [str(AIRBYTE_PYTHON), str(PROBES / probe)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_chunks_merge_on_the_key_keep_null_keys_and_flag_values_that_do_not_fit(tmp_path):
    result = run_in_airbyte_venv("duckdb_loader_merge_chunks.py", tmp_path)
    assert result["first"] == {"products": 4} and result["second"] == {"products": 2}
    rows = {(r[0], r[1]): r for r in result["rows"]}
    assert len(result["rows"]) == 4, result["rows"]  # id 1 once (its newest version), id 2, both null keys
    assert rows[(1, "Mazda")][2] == 13.0
    assert rows[(None, "nobody")] and rows[(None, "nobody either")]
    meta = json.loads(rows[(2, "Kia")][3])
    assert rows[(2, "Kia")][2] is None
    assert meta == {"changes": [{"field": "price", "change": "NULLED", "reason": "DESTINATION_SERIALIZATION_ERROR"}]}
    assert result["state"] == [
        {"type": "STREAM", "stream": {"stream_descriptor": {"name": "products"}, "stream_state": {"n": 1}}}
    ]


def test_a_chunk_that_fails_leaves_neither_its_rows_nor_its_state(tmp_path):
    result = run_in_airbyte_venv("duckdb_loader_malformed_chunk.py", tmp_path)
    # DuckDB's JSON reader refuses the cut-off line (the probe catches only that error, so any other
    # one, a NameError too, fails it), and names the chunk file.
    assert result["error"], "a malformed line must fail the chunk, not vanish"
    assert "Malformed JSON" in result["error"] and "bad.jsonl" in result["error"], result["error"]
    assert result["rows"] == 0 and result["state"] == []


def test_the_real_connector_syncs_across_many_chunks_then_resumes_from_its_state(tmp_path):
    result = run_in_airbyte_venv("duckdb_loader_real_connector_resumes.py", tmp_path)
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
    result = run_in_airbyte_venv("duckdb_loader_inject_bad_records.py", tmp_path)
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
    assert (
        "this run loaded nothing new" in resent["message"] and "Only 5 of the 10 could be injected" in resent["message"]
    )
    assert len(rows["users"]) == 4 and len(rows["purchases"]) == 2, "a new version replaces its record, never adds one"
    by_raw_id = {r[3]: r for s in rows for r in rows[s]}
    for f in resent["faults"]:
        assert f["raw_id"] not in result["ids_before"][f["stream"]], "a re-sent version gets a new raw id"
        assert by_raw_id[f["raw_id"]][4] > result["before_latest"], "and this run's extraction time"
    kept_keys = {r[0]: (r[1], r[2]) for r in rows["users"] if r[0] is not None}  # their key kept, a field corrupted
    assert set(kept_keys) < {1, 2, 3} and sorted(kept_keys.values()) == [(-7, "1.80"), (30, "tall")], rows["users"]
    assert len(result["logged"]) == 6 and {tuple(r) for r in result["logged"]} >= {
        (f["stream"], f["raw_id"], f["fault"]) for f in resent["faults"] + new_user["faults"]
    }
    assert result["products_only"]["faults"] == [] and "nothing injected" in result["products_only"]["message"]
