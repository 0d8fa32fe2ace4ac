"""Load an Airbyte source straight into DuckDB, at the connector's own speed.

The lab's default loader for the DuckDB warehouse (`extract_load.py` calls it). It speaks the
Airbyte protocol with the connector directly: it starts `source-faker read` with a configured catalog
and the saved state, and hands the connector's output, a file of JSON lines at a time, to DuckDB's
own JSON reader, which types and merges the records into the raw tables.

Why not PyAirbyte's DuckDB cache: on a 2-core laptop, PyAirbyte's per-record Python work (parsing,
normalising, re-writing each record) costs more CPU than the connector spends making it, and
importing PyAirbyte alone takes seconds. bench/elt.py measured its sync of 100k users at 1.5x the
connector's own run; this loader adds a few percent (figures in README.md). PyAirbyte still loads
Snowflake (`--target snowflake`), and `--loader pyairbyte` compares the two on DuckDB.

The raw tables keep PyAirbyte's layout, so a raw file either loader wrote works with the other:
one typed column per property of the stream's JSON schema, plus `_airbyte_raw_id`,
`_airbyte_extracted_at` and `_airbyte_meta`; state per stream in `raw._airbyte_state`.

Nothing is lost, and nothing is claimed that was not loaded:
- Records merge on the stream's primary key (the newest version of a key wins, as with PyAirbyte's
  merge); a record whose key is null is kept, never folded into another.
- Each chunk of records is written in one transaction together with the state messages the
  connector sent up to that point, so a sync that dies half-way resumes from what was committed.
"""

from __future__ import annotations

import json
import queue
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

# Records per chunk file: big enough that DuckDB's per-statement costs vanish, small enough that a
# chunk's merge uses little memory and the last one (waited for after the connector ends) is short.
CHUNK_LINES = 50_000
# DuckDB's own limits while loading: a laptop shares its memory with the whole lab.
DUCKDB_SETTINGS = {"memory_limit": "512MB", "threads": 2, "TimeZone": "UTC"}
RECORD_PREFIX = b'{"type":"RECORD"'
# How each JSON-schema type lands in DuckDB: PyAirbyte's own mapping (airbyte/types.py), so the raw
# tables are the same whichever loader made them.
AIRBYTE_TYPES = {
    "timestamp_with_timezone": "TIMESTAMP",
    "timestamp_without_timezone": "TIMESTAMP",
    "time_with_timezone": "TIME",
    "time_without_timezone": "TIME",
    "date": "DATE",
}
JSON_TYPES = {
    "string": "VARCHAR",
    "integer": "BIGINT",
    "number": "DECIMAL(38,9)",
    "boolean": "BOOLEAN",
    "object": "JSON",
    "array": "JSON",
}
META_COLUMNS = {"_airbyte_raw_id": "VARCHAR", "_airbyte_extracted_at": "TIMESTAMP", "_airbyte_meta": "JSON"}


class ConnectorFailed(RuntimeError):
    """The connector exited with an error; the records and state committed before it are kept."""


def column_type(prop: dict) -> str:
    if prop.get("airbyte_type") in AIRBYTE_TYPES:
        return AIRBYTE_TYPES[prop["airbyte_type"]]
    types = prop.get("type", "string")
    types = [t for t in (types if isinstance(types, list) else [types]) if t != "null"] or ["string"]
    if types[0] == "string" and prop.get("format") == "date-time":
        return "TIMESTAMP"
    if types[0] == "string" and prop.get("format") == "date":
        return "DATE"
    return JSON_TYPES.get(types[0], "VARCHAR")


@dataclass
class StreamPlan:
    name: str
    columns: dict[str, str]  # property -> DuckDB type
    primary_key: list[str]
    cursor_field: list[str]

    @classmethod
    def from_catalog(cls, catalog_stream: dict, sync: dict) -> StreamPlan:
        properties = catalog_stream["json_schema"].get("properties", {})
        primary_key = sync.get("primary_key")
        primary_key = [primary_key] if isinstance(primary_key, str) else list(primary_key or [])
        if not primary_key and catalog_stream.get("source_defined_primary_key"):
            primary_key = [path[0] for path in catalog_stream["source_defined_primary_key"]]
        cursor = sync.get("cursor_field") or catalog_stream.get("default_cursor_field") or []
        return cls(
            catalog_stream["name"],
            {name: column_type(prop) for name, prop in properties.items()},
            primary_key,
            [cursor] if isinstance(cursor, str) else list(cursor),
        )


def configured_catalog(plans: list[StreamPlan], catalog: dict, full_refresh: bool) -> dict:
    by_name = {stream["name"]: stream for stream in catalog["streams"]}
    streams = []
    for plan in plans:
        incremental = not full_refresh and "incremental" in by_name[plan.name].get("supported_sync_modes", [])
        streams.append(
            {
                "stream": by_name[plan.name],
                "sync_mode": "incremental" if incremental else "full_refresh",
                "cursor_field": plan.cursor_field,
                "destination_sync_mode": "append_dedup" if plan.primary_key else "append",
                "primary_key": [[key] for key in plan.primary_key],
            }
        )
    return {"streams": streams}


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class SyncResult:
    emitted: dict[str, int] = field(default_factory=dict)
    chunks: int = 0
    connector_seconds: float = 0.0
    load_wait_seconds: float = 0.0  # after the connector ended, waiting for the last chunk's merge


class RawTables:
    """The raw schema of one DuckDB file: its tables, its saved state, and the merge of a chunk."""

    def __init__(self, db_path: Path, schema: str, source_name: str, plans: list[StreamPlan]):
        import duckdb

        if db_path.stem == schema:  # DuckDB names the file's catalog after it: `raw.x` would be ambiguous
            raise ValueError(
                f"the raw file may not be called {db_path.name} (its schema is {schema!r}): "
                f"DuckDB could not tell the file from the schema. Use another name, e.g. airbyte_{db_path.name}"
            )
        self.schema, self.source_name, self.plans = schema, source_name, plans
        self.con = duckdb.connect(str(db_path))
        for key, value in DUCKDB_SETTINGS.items():
            self.con.execute(f"SET {key} = '{value}'")
        self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {q(schema)}")
        self.con.execute(
            f"CREATE TABLE IF NOT EXISTS {q(schema)}._airbyte_state (source_name VARCHAR, stream_name VARCHAR, "
            "table_name VARCHAR PRIMARY KEY, state_json VARCHAR, last_updated TIMESTAMP WITH TIME ZONE)"
        )
        for plan in plans:
            columns = {**plan.columns, **META_COLUMNS}
            self.con.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table(plan)} ("
                + ", ".join(f"{q(c)} {t}" for c, t in columns.items())
                + ")"
            )

    def table(self, plan: StreamPlan) -> str:
        return f"{q(self.schema)}.{q(plan.name)}"

    def saved_state(self) -> list[dict]:
        """The connector's last committed state for each planned stream, as the protocol wants it."""
        names = [plan.name for plan in self.plans]
        rows = self.con.execute(
            f"SELECT state_json FROM {q(self.schema)}._airbyte_state "
            "WHERE source_name = ? AND list_contains(?, stream_name)",
            [self.source_name, names],
        ).fetchall()
        states = []
        for (state_json,) in rows:
            state = json.loads(state_json)
            stream = state.get("stream") or {}
            if state.get("type") == "STREAM" and stream.get("stream_descriptor"):
                # Only what the protocol defines (PyAirbyte's rows carry extra fields).
                states.append(
                    {
                        "type": "STREAM",
                        "stream": {
                            "stream_descriptor": stream["stream_descriptor"],
                            "stream_state": stream.get("stream_state"),
                        },
                    }
                )
        return states

    def merge_chunk(self, chunk: Path, states: dict[str, dict]) -> dict[str, int]:
        """Type and merge one chunk of connector output, with the state that covers it: one transaction."""
        con, counts = self.con, {}
        con.execute("BEGIN")
        try:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _chunk AS SELECT row_number() OVER () AS _line, record.stream AS stream, "
                "record.data AS data, record.emitted_at AS emitted_at FROM read_ndjson(?, columns = "
                "{'type': 'VARCHAR', 'record': 'STRUCT(stream VARCHAR, data JSON, emitted_at BIGINT)'}) "
                "WHERE type = 'RECORD'",
                [str(chunk)],
            )
            counts = dict(con.execute("SELECT stream, count(*) FROM _chunk GROUP BY stream").fetchall())
            unplanned = sorted(set(counts) - {plan.name for plan in self.plans})
            if unplanned:
                raise RuntimeError(f"the connector sent records of stream(s) {unplanned}, which were not asked for")
            for plan in self.plans:
                if counts.get(plan.name):
                    self._merge_stream(plan)
            for name, state in states.items():
                con.execute(
                    f"INSERT OR REPLACE INTO {q(self.schema)}._airbyte_state VALUES (?, ?, ?, ?, now())",
                    [self.source_name, name, name, json.dumps(state)],
                )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return counts

    def _merge_stream(self, plan: StreamPlan) -> None:
        columns = list(plan.columns)
        structure = json.dumps(plan.columns)
        paths = [f'$."{c}"' for c in columns]
        # A value that does not fit its column's type becomes NULL, and the record says so in
        # _airbyte_meta the way Airbyte's destinations do: {"changes": [{"field", "change": "NULLED", ...}]}.
        nulled = ", ".join(
            f"CASE WHEN given[{i}] IS NOT NULL AND r.{q(c)} IS NULL THEN '{c.replace(chr(39), chr(39) * 2)}' END"
            for i, c in enumerate(columns, start=1)
        )
        keys = ", ".join(q(k) for k in plan.primary_key)
        # The newest version of each key in this chunk (a null key is never folded into another).
        newest = (
            (
                f"QUALIFY ({' OR '.join(f'{q(k)} IS NULL' for k in plan.primary_key)}) OR "
                f"row_number() OVER (PARTITION BY {keys} ORDER BY _line DESC) = 1"
            )
            if plan.primary_key
            else ""
        )
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE _new AS SELECT * EXCLUDE (_line) FROM ("
            " SELECT unnest(r), _line, uuidv7()::VARCHAR AS _airbyte_raw_id,"
            "  make_timestamp(emitted_at * 1000) AS _airbyte_extracted_at,"
            "  CASE WHEN len(nulled) = 0 THEN '{}'::JSON ELSE json_object('changes', [json_object('field', f, 'change',"
            "   'NULLED', 'reason', 'DESTINATION_SERIALIZATION_ERROR') FOR f IN nulled]) END AS _airbyte_meta"
            " FROM (SELECT *, list_filter([" + nulled + "], f -> f IS NOT NULL) AS nulled FROM ("
            "  SELECT _line, emitted_at, json_transform(data, ?) AS r, json_extract_string(data, ?) AS given"
            "  FROM _chunk WHERE stream = ?))"
            f") {newest}",
            [structure, paths, plan.name],
        )
        if plan.primary_key:
            match = " AND ".join(f"t.{q(k)} = n.{q(k)}" for k in plan.primary_key)
            self.con.execute(f"DELETE FROM {self.table(plan)} t USING _new n WHERE {match}")
        self.con.execute(f"INSERT INTO {self.table(plan)} BY NAME SELECT * FROM _new")

    def close(self) -> None:
        self.con.close()


def run_connector(
    executable: Path, config: dict, catalog: dict, state: list[dict], raw: RawTables, staging_dir: Path, log=print
) -> SyncResult:
    """Run `<connector> read`, merging its records chunk by chunk while it runs."""
    result = SyncResult()
    staging_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="sync-", dir=staging_dir)).resolve()  # the connector runs in it
    for name, content in (("config.json", config), ("catalog.json", catalog), ("state.json", state)):
        (work / name).write_text(json.dumps(content))
    command = [str(executable), "read", "--config", str(work / "config.json"), "--catalog", str(work / "catalog.json")]
    if state:
        command += ["--state", str(work / "state.json")]

    chunks: queue.Queue = queue.Queue(maxsize=2)  # at most ~3 chunk files on disk at once
    load_error: list[BaseException] = []

    def loader() -> None:
        while (item := chunks.get()) is not None:
            path, states = item
            try:
                if not load_error:
                    for stream, n in raw.merge_chunk(path, states).items():
                        result.emitted[stream] = result.emitted.get(stream, 0) + n
                    result.chunks += 1
                    log(
                        f"loaded chunk {result.chunks}: "
                        + (", ".join(f"{s} {n}" for s, n in sorted(result.emitted.items())) or "no records")
                    )
            except BaseException as error:  # noqa: BLE001 (handed to the main thread)
                load_error.append(error)
            finally:
                path.unlink(missing_ok=True)

    thread = threading.Thread(target=loader, name="duckdb-merge", daemon=True)
    thread.start()
    errors: list[str] = []
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=work)
    stderr_tail: list[str] = []
    stderr_thread = threading.Thread(
        target=lambda: stderr_tail.extend(line.decode(errors="replace") for line in process.stderr), daemon=True
    )
    stderr_thread.start()
    try:
        chunk_no, lines, pending_states = 0, 0, {}
        out = open(work / "chunk-0.jsonl", "wb")
        for line in process.stdout:
            if line.startswith(RECORD_PREFIX):
                out.write(line)
                lines += 1
                if lines >= CHUNK_LINES:
                    out.close()
                    chunks.put((Path(out.name), pending_states))
                    if load_error:
                        break
                    chunk_no, lines, pending_states = chunk_no + 1, 0, {}
                    out = open(work / f"chunk-{chunk_no}.jsonl", "wb")
                continue
            message = json.loads(line)
            kind = message.get("type")
            if kind == "STATE" and (message["state"].get("stream") or {}).get("stream_descriptor"):
                pending_states[message["state"]["stream"]["stream_descriptor"]["name"]] = message["state"]
            elif kind == "LOG" and message["log"].get("level") in ("WARN", "ERROR", "FATAL"):
                log(f"{message['log']['level']} {message['log']['message']}")
            elif kind == "TRACE" and message["trace"].get("type") == "ERROR":
                error = message["trace"]["error"]
                errors.append(
                    " / ".join(filter(None, [error.get("message"), error.get("internal_message")])) or "unknown error"
                )
                log(f"ERROR {errors[-1]}")
        out.close()
        if not load_error:
            chunks.put((Path(out.name), pending_states))
        process.wait()
        result.connector_seconds = time.perf_counter() - started
        waited = time.perf_counter()
        chunks.put(None)
        thread.join()
        result.load_wait_seconds = time.perf_counter() - waited
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if thread.is_alive():
            chunks.put(None)
            thread.join()
        stderr_thread.join(timeout=5)
        for leftover in work.glob("*"):
            leftover.unlink()
        work.rmdir()
    if load_error:
        raise load_error[0]
    if process.returncode != 0 or errors:
        detail = "; ".join(errors) or "".join(stderr_tail[-20:]).strip() or "no message"
        raise ConnectorFailed(
            f"{executable.name} exited with code {process.returncode}: {detail}. "
            "The records and state of the chunks loaded before it are kept."
        )
    return result
