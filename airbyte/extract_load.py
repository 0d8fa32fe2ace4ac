"""Extract-load with a real Airbyte connector and no Airbyte platform: source-faker into the raw
schema of the lab's warehouse.

It runs inside the lab's Airbyte environment (`.venv-airbyte/`, `/opt/airbyte-venv` in the image),
whose pins cannot live beside Prefect's. Two loaders:
- DuckDB (the default): `duckdb_loader.py` runs the connector over the Airbyte protocol and hands
  its records to DuckDB's JSON reader, chunk by chunk; it adds a few percent to the connector's
  own run (bench/elt.py).
- PyAirbyte's caches: `--target snowflake`, or `--loader pyairbyte` for DuckDB (to compare: it
  costs about 1.5x the connector's run on a 2-core laptop). PyAirbyte is opt-in:
  LAB_WITH_PYAIRBYTE=1. The `elt` flow (flows/13_elt.py) starts it
as a subprocess and reads the one JSON line it prints last; you can run it by hand too:

    .venv-airbyte/bin/python airbyte/extract_load.py --raw-db .lab/warehouse/airbyte_raw.duckdb --records 1000

What it does:
1. Reads the source's config and stream list from `airbyte/source-faker.yaml`.
2. Runs the connector (installed at build time, next to this interpreter: never downloaded here).
3. Writes each stream into the raw tables; the connector's state is saved beside them
   (`raw._airbyte_state`), so the next run is incremental: it reads only what is new.
4. Optionally corrupts some records (`--inject-bad-records`), the way a misbehaving upstream
   would, so the quarantine downstream has something to catch: the records this run loaded
   first, and when it loaded too few (an incremental run often loads nothing), records loaded
   earlier, re-sent as corrupted new versions. Every corruption is written down in
   `raw._lab_injected_faults`, and one line says what was injected, and why fewer, if fewer.
5. Prints one line `ELT_RESULT {json}`: per stream, the records the connector emitted this run, the
   raw rows this run wrote (`loaded`: they must match), and the raw rows before and after; and the
   injection (`requested`, each fault, the streams that fell short, the message).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

# PyAirbyte reads these at import time: no registry lookups and no telemetry (the lab works offline),
# plain log lines instead of a live terminal display.
os.environ.setdefault("AIRBYTE_OFFLINE_MODE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("NO_LIVE_PROGRESS", "1")

import yaml  # noqa: E402  (after the environment above)

HERE = Path(__file__).resolve().parent
RESULT_PREFIX = "ELT_RESULT "
# The pinned connector's spec and catalog, captured once (`--capture-metadata`) and shipped beside
# its config. Otherwise each sync would start the connector twice more (`spec` to validate the
# config, `discover` for the catalog): seconds of interpreter start-up each, the largest fixed cost
# of a small sync (bench/elt.py). The config is still validated, against the file.
METADATA_SUFFIX = ".metadata.json"

# The faults --inject-bad-records writes, in turn: (stream, SQL assignment, what the quarantine says).
FAULTS = [
    ("users", "id = NULL", "null key: id"),
    ("purchases", "user_id = NULL", "null key: user_id"),
    ("users", "age = -7", "out of range: age"),
    ("users", "height = 'tall'", "bad type: height is not a number"),
    ("purchases", "product_id = 999999", "unknown product_id"),
]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=HERE / "source-faker.yaml")
    parser.add_argument("--raw-db", type=Path, help="the DuckDB file of the raw tables (target duckdb)")
    parser.add_argument("--target", choices=["duckdb", "snowflake"], default="duckdb")
    parser.add_argument("--records", type=int, help="source-faker's count (default: the yaml's)")
    parser.add_argument("--streams", default="", help="comma-separated (default: all in the yaml)")
    parser.add_argument("--full-refresh", action="store_true", help="ignore the saved state")
    parser.add_argument("--inject-bad-records", type=int, default=0)
    parser.add_argument(
        "--capture-metadata",
        action="store_true",
        help="ask the installed connector for its spec and catalog, save them, and exit",
    )
    parser.add_argument(
        "--loader",
        choices=["direct", "pyairbyte"],
        default="direct",
        help="duckdb target: the connector straight into DuckDB (default, duckdb_loader.py) "
        "or PyAirbyte's DuckDB cache (slower; kept to compare). Snowflake always uses PyAirbyte.",
    )
    parser.add_argument(
        "--live-metadata", action="store_true", help="ignore the saved spec and catalog: ask the connector (slower)"
    )
    return parser.parse_args(argv)


def connector_version(name: str) -> str:
    from importlib.metadata import version

    return version(f"airbyte-{name}")


def metadata_path(source_file: Path) -> Path:
    return source_file.with_name(source_file.stem + METADATA_SUFFIX)


def capture_metadata(source_spec: dict, metadata_file: Path, executable: Path, config: dict) -> None:
    """Ask the installed connector for its spec and catalog and save them beside its config."""
    spec, catalog = connector_metadata(metadata_file, executable, config, live=True)
    name = source_spec["connector"]
    saved = {"connector": name, "connector_version": connector_version(name), "spec": spec, "catalog": catalog}
    metadata_file.write_text(json.dumps(saved, indent=1) + "\n")
    print(f"saved {name} {saved['connector_version']}'s spec and catalog to {metadata_file}")


def make_cache(args: argparse.Namespace):
    import airbyte as ab

    if args.target == "snowflake":
        from airbyte.caches import SnowflakeCache

        spec = yaml.safe_load((HERE / "destination-snowflake.yaml").read_text())
        missing = [var for var in spec["config_from_env"].values() if not os.environ.get(var)]
        if missing:
            raise SystemExit(f"target snowflake needs {', '.join(missing)} in .env (see .env.example)")
        config = {key: os.environ[var] for key, var in spec["config_from_env"].items()}
        return SnowflakeCache(
            schema_name=spec["schema"], cache_dir=Path(tempfile.mkdtemp(prefix="airbyte-staging-")), **config
        )
    if args.raw_db is None:
        raise SystemExit("--raw-db is required for target duckdb")
    args.raw_db.parent.mkdir(parents=True, exist_ok=True)
    spec = yaml.safe_load((HERE / "destination-duckdb.yaml").read_text())
    # PyAirbyte stages batches in files under cache_dir before loading them: beside the raw file,
    # never the working directory (a flow's is flows/, read-only in Docker).
    return ab.DuckDBCache(
        db_path=str(args.raw_db), schema_name=spec["schema"], cache_dir=args.raw_db.parent / "airbyte-staging"
    )


class Sql:
    """One small query interface over a DuckDB connection (direct loader) or a PyAirbyte cache's
    SQLAlchemy connection (PyAirbyte loader), so counting and fault injection are written once.
    Queries name their parameters `:name`."""

    def __init__(self, con, duckdb: bool):
        self.con, self.duckdb = con, duckdb

    def rows(self, query: str, **params) -> list[tuple]:
        if self.duckdb:
            return self.con.execute(re.sub(r"(?<!:):(\w+)", r"$\1", query), params or None).fetchall()
        from sqlalchemy import text

        result = self.con.execute(text(query), params)
        return [tuple(row) for row in result] if result.returns_rows else []

    def scalar(self, query: str, **params):
        rows = self.rows(query, **params)
        return rows[0][0] if rows else None

    def table_exists(self, schema: str, table: str) -> bool:
        return bool(
            self.scalar(
                "select count(*) from information_schema.tables where lower(table_schema) = lower(:s) "
                "and lower(table_name) = lower(:t)",
                s=schema,
                t=table,
            )
        )

    def new_raw_id(self) -> str:
        """An id for a record version this script writes: time-ordered like the loader's (uuidv7) on DuckDB."""
        if self.duckdb:
            return self.scalar("select uuidv7()::varchar")
        import uuid

        return str(uuid.uuid4())

    def commit(self) -> None:
        if self.duckdb:
            self.con.execute("checkpoint")
        else:
            self.con.commit()


def raw_counts(sql: Sql, schema: str, streams: list[str]) -> dict[str, dict]:
    """Rows and the latest extraction time per raw table (zero rows for a table not made yet)."""
    counts = {}
    for stream in streams:
        if sql.table_exists(schema, stream):
            rows, latest = sql.rows(f"select count(*), max(_airbyte_extracted_at) from {schema}.{stream}")[0]
        else:
            rows, latest = 0, None
        counts[stream] = {"rows": rows, "latest_extracted_at": latest}
    return counts


def rows_loaded_since(sql: Sql, schema: str, streams: list[str], before: dict[str, dict]) -> dict[str, int]:
    """Raw rows this run wrote (inserted or updated), by their extraction time."""
    loaded = {}
    for stream in streams:
        since = before[stream]["latest_extracted_at"]
        if since is None:
            loaded[stream] = sql.scalar(f"select count(*) from {schema}.{stream}")
        else:
            loaded[stream] = sql.scalar(
                f"select count(*) from {schema}.{stream} where _airbyte_extracted_at > :since", since=since
            )
    return loaded


def inject_faults(sql: Sql, schema: str, how_many: int, before: dict[str, dict], loaded: dict[str, int]) -> dict:
    """Corrupt `how_many` records, in turn through the FAULTS of the streams this run synced; write
    each one down in `_lab_injected_faults`, and say in one message what was done.

    Records this run loaded come first. When a stream has none left (an incremental sync often
    loads nothing new), a record loaded earlier is re-sent as a corrupted new version, the way a
    misbehaving upstream re-sends an updated record: it gets a new `_airbyte_raw_id` and this run's
    extraction time, and it replaces the version before it, as every newer version of a key does
    (so raw rows stay one per key; a `full_refresh` run re-sends the good versions). No record gets
    two faults; when a stream has no record left to corrupt, fewer are injected and the message says so.
    """
    if how_many == 0:
        return {"requested": 0, "faults": [], "not_injected": {}, "message": None}
    faults = [fault for fault in FAULTS if fault[0] in before]
    sql.rows(
        f"create table if not exists {schema}._lab_injected_faults "
        "(stream varchar, raw_id varchar, fault varchar, injected_at timestamp default current_timestamp)"
    )
    injected, short = [], {}
    for n in range(how_many if faults else 0):
        stream, assignment, fault = faults[n % len(faults)]
        if stream in short:  # this stream has nothing left to corrupt
            short[stream] += 1
            continue
        since = before[stream]["latest_extracted_at"]
        fresh = "1" if since is None else "case when _airbyte_extracted_at > :since then 1 else 0 end"
        row = sql.rows(
            f"select _airbyte_raw_id, {fresh} from {schema}.{stream} "
            f"where _airbyte_raw_id not in (select raw_id from {schema}._lab_injected_faults) "
            f"order by 2 desc, _airbyte_raw_id limit 1",
            **({} if since is None else {"since": since}),
        )
        if not row:
            short[stream] = 1
            continue
        raw_id, loaded_this_run = row[0][0], bool(row[0][1])
        if loaded_this_run:
            sql.rows(f"update {schema}.{stream} set {assignment} where _airbyte_raw_id = :raw_id", raw_id=raw_id)
            new_id = raw_id
        else:
            new_id = sql.new_raw_id()
            sql.rows(
                f"update {schema}.{stream} set {assignment}, _airbyte_raw_id = :new_id, "
                "_airbyte_extracted_at = current_timestamp where _airbyte_raw_id = :raw_id",
                raw_id=raw_id,
                new_id=new_id,
            )
        sql.rows(
            f"insert into {schema}._lab_injected_faults (stream, raw_id, fault) values (:s, :r, :f)",
            s=stream,
            r=new_id,
            f=fault,
        )
        injected.append({"stream": stream, "raw_id": new_id, "fault": fault, "new_version": not loaded_this_run})
    sql.commit()
    return {
        "requested": how_many,
        "faults": injected,
        "not_injected": short,
        "message": injection_message(how_many, injected, short, loaded, list(before)),
    }


def injection_message(
    requested: int, injected: list[dict], short: dict[str, int], loaded: dict[str, int], streams: list[str]
) -> str:
    """One line on what --inject-bad-records did: into which records, and why fewer, if fewer."""
    head = f"inject_bad_records={requested}: "
    if not any(fault[0] in streams for fault in FAULTS):
        made_for = " and ".join(sorted({fault[0] for fault in FAULTS}))
        return (
            head
            + f"nothing injected: the faults are made for {made_for}, and this run synced only {', '.join(streams)}"
        )
    per_stream: dict[str, int] = {}
    for fault in injected:
        per_stream[fault["stream"]] = per_stream.get(fault["stream"], 0) + 1
    resent = sum(fault["new_version"] for fault in injected)
    fresh = len(injected) - resent

    def records(n: int) -> str:
        return f"{n} record" + ("" if n == 1 else "s")

    if not injected:
        message = head + "nothing injected"
    elif not resent:
        message = head + f"corrupted {records(fresh)} this run loaded"
    elif not fresh:
        why = (
            "this run loaded nothing new (an incremental sync reads only what changed since the saved state)"
            if not any(loaded.values())
            else "this run loaded no new " + " or ".join(sorted(per_stream))
        )
        message = (
            head
            + f"{why}, so {records(resent)} loaded earlier {'was' if resent == 1 else 'were'} re-sent as corrupted new versions"
        )
    else:
        message = head + (
            f"corrupted {records(fresh)} this run loaded and, as it loaded too few, re-sent "
            f"{records(resent)} loaded earlier as corrupted new versions"
        )
    if per_stream:
        message += " (" + ", ".join(f"{stream} {n}" for stream, n in per_stream.items()) + ")"
    if resent:
        message += "; they replace the good versions until a full_refresh=true run re-sends those"
    if short:
        message += f". Only {len(injected)} of the {requested} could be injected: " + ", ".join(
            f"{stream} has no record left that is not corrupted already ({n} short)" for stream, n in short.items()
        )
    return message


def connector_metadata(metadata_file: Path, executable: Path, config: dict, live: bool) -> tuple[dict, dict]:
    """The connector's spec and catalog: the saved ones if they belong to the installed connector,
    else asked of the connector itself (`spec`, `discover`)."""
    if not live and metadata_file.exists():
        saved = json.loads(metadata_file.read_text())
        installed = connector_version(saved["connector"])
        if saved.get("connector_version") == installed:
            return saved["spec"], saved["catalog"]
        print(
            f"{metadata_file.name} is for version {saved.get('connector_version')}, the installed connector is "
            f"{installed}: asking the connector (run --capture-metadata to refresh)"
        )
    import subprocess

    def ask(*command: str) -> dict:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "config.json").write_text(json.dumps(config))
            out = subprocess.run(
                [str(executable), *command], capture_output=True, text=True, cwd=tmp, check=False
            ).stdout
        for line in out.splitlines():
            message = json.loads(line) if line.startswith("{") else {}
            if message.get("type") in ("SPEC", "CATALOG"):
                return message["spec" if message["type"] == "SPEC" else "catalog"]
        raise SystemExit(f"{executable.name} {command[0]} gave no answer")

    return ask("spec"), ask("discover", "--config", "config.json")


def check_config(spec: dict, config: dict, name: str) -> None:
    """Validate the source's config against the connector's spec, before anything runs."""
    import jsonschema

    errors = sorted(jsonschema.Draft7Validator(spec["connectionSpecification"]).iter_errors(config), key=str)
    if errors:
        problems = "; ".join(f"{'.'.join(map(str, e.path)) or 'config'}: {e.message}" for e in errors)
        raise SystemExit(
            f"{name}'s config is invalid ({problems}): fix airbyte/{name.removeprefix('source-')}.yaml "
            "or the parameters"
        )


def main_direct(
    args: argparse.Namespace, source_spec: dict, streams: list[str], config: dict, executable: Path
) -> dict:
    """Target duckdb, default loader: the connector straight into DuckDB (duckdb_loader.py)."""
    from duckdb_loader import RawTables, StreamPlan, configured_catalog, run_connector

    started = time.perf_counter()
    if args.raw_db is None:
        raise SystemExit("--raw-db is required for target duckdb")
    spec, catalog = connector_metadata(metadata_path(args.source), executable, config, args.live_metadata)
    check_config(spec, config, source_spec["connector"])
    by_name = {stream["name"]: stream for stream in catalog["streams"]}
    missing = [s for s in streams if s not in by_name]
    if missing:
        raise SystemExit(f"the connector's catalog has no stream(s) {missing}")
    plans = [StreamPlan.from_catalog(by_name[s], source_spec["streams"][s]) for s in streams]
    schema = yaml.safe_load((HERE / "destination-duckdb.yaml").read_text())["schema"]
    args.raw_db.parent.mkdir(parents=True, exist_ok=True)
    raw = RawTables(args.raw_db, schema, source_spec["connector"], plans)
    try:
        sql = Sql(raw.con, duckdb=True)
        before = raw_counts(sql, schema, streams)
        state = [] if args.full_refresh else raw.saved_state()
        print(
            f"syncing {', '.join(streams)} from {source_spec['connector']} "
            f"({'full refresh' if args.full_refresh or not state else 'incremental, from the saved state'})",
            flush=True,
        )
        sync = run_connector(
            executable,
            config,
            configured_catalog(plans, catalog, args.full_refresh),
            state,
            raw,
            args.raw_db.parent / "airbyte-staging",
            log=lambda line: print(line, flush=True),
        )
        read_seconds = time.perf_counter() - started
        loaded = rows_loaded_since(sql, schema, streams, before)
        injection = inject_faults(sql, schema, args.inject_bad_records, before, loaded)
        after = raw_counts(sql, schema, streams)
    finally:
        raw.close()
    return {
        "schema": schema,
        "emitted": sync.emitted,
        "loaded": loaded,
        "before": before,
        "after": after,
        "injection": injection,
        "read_seconds": read_seconds,
        "loader": "direct",
        "connector_seconds": round(sync.connector_seconds, 3),
        "load_wait_seconds": round(sync.load_wait_seconds, 3),
    }


def main_pyairbyte(
    args: argparse.Namespace, source_spec: dict, streams: list[str], config: dict, executable: Path
) -> dict:
    """PyAirbyte's cache: Snowflake, or DuckDB with --loader pyairbyte."""
    started = time.perf_counter()
    source = pyairbyte_source(source_spec, config, executable)
    from airbyte_protocol.models import AirbyteCatalog, ConnectorSpecification

    # PyAirbyte would start the connector twice more to ask for these; it keeps them on the source
    # once it has them, and there is no public setter.
    spec, catalog = connector_metadata(metadata_path(args.source), executable, config, args.live_metadata)
    source._spec = ConnectorSpecification.model_validate(spec)
    source._discovered_catalog = AirbyteCatalog.model_validate(catalog)
    source.select_streams(streams)
    cache = make_cache(args)
    schema = cache.schema_name
    with cache.processor.get_sql_connection() as con:
        before = raw_counts(Sql(con, duckdb=False), schema, streams)
    result = source.read(cache=cache, force_full_refresh=args.full_refresh)
    read_seconds = time.perf_counter() - started
    emitted = dict(result._progress_tracker.stream_read_counts)  # per stream, this run (no public API)
    with cache.processor.get_sql_connection() as con:
        sql = Sql(con, duckdb=False)
        loaded = rows_loaded_since(sql, schema, streams, before)
        injection = inject_faults(sql, schema, args.inject_bad_records, before, loaded)
        after = raw_counts(sql, schema, streams)
    return {
        "schema": schema,
        "emitted": emitted,
        "loaded": loaded,
        "before": before,
        "after": after,
        "injection": injection,
        "read_seconds": read_seconds,
        "loader": "pyairbyte",
    }


def pyairbyte_source(source_spec: dict, config: dict, executable: Path):
    try:
        import airbyte as ab

        ab.get_source  # noqa: B018 (without PyAirbyte, `airbyte` is this folder, as a namespace package)
    except (ImportError, AttributeError):
        raise SystemExit(
            "PyAirbyte is not installed in the lab's Airbyte environment; the Snowflake target and "
            "--loader pyairbyte need it. Set LAB_WITH_PYAIRBYTE=1 in .env, then run ./lab up "
            "(Docker: docker compose build)."
        ) from None

    return ab.get_source(source_spec["connector"], config=config, local_executable=str(executable))


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    source_spec = yaml.safe_load(args.source.read_text())
    streams = [s for s in args.streams.split(",") if s] or list(source_spec["streams"])
    unknown = sorted(set(streams) - set(source_spec["streams"]))
    if unknown:
        raise SystemExit(f"unknown stream(s) {unknown}: {args.source.name} offers {list(source_spec['streams'])}")
    config = dict(source_spec["config"])
    if args.records is not None:
        config["count"] = args.records

    started = time.perf_counter()
    # The connector was installed next to this interpreter at build time (airbyte/requirements.lock).
    executable = Path(sys.executable).with_name(source_spec["connector"])
    if not executable.exists():
        raise SystemExit(
            f"{executable} is missing: the Airbyte environment is incomplete; "
            "delete .venv-airbyte/ and run ./lab up to rebuild it (in Docker: rebuild the lab image)"
        )
    if args.capture_metadata:
        capture_metadata(source_spec, metadata_path(args.source), executable, config)
        return 0
    direct = args.target == "duckdb" and args.loader == "direct"
    run = (main_direct if direct else main_pyairbyte)(args, source_spec, streams, config, executable)
    emitted, loaded, before, after = run["emitted"], run["loaded"], run["before"], run["after"]

    summary = {
        "target": args.target,
        "raw_db": str(args.raw_db) if args.raw_db else None,
        "schema": run["schema"],
        "loader": run["loader"],
        "records_setting": config["count"],
        "full_refresh": args.full_refresh,
        "seconds": round(time.perf_counter() - started, 3),
        "read_seconds": round(run["read_seconds"], 3),
        **{key: run[key] for key in ("connector_seconds", "load_wait_seconds") if key in run},
        "streams": {
            stream: {
                "emitted": emitted.get(stream, 0),
                "loaded": loaded[stream],
                "raw_rows_before": before[stream]["rows"],
                "raw_rows_after": after[stream]["rows"],
            }
            for stream in streams
        },
        "injection": run["injection"],
    }
    if run["injection"]["message"]:
        print(run["injection"]["message"], flush=True)
    print(RESULT_PREFIX + json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
