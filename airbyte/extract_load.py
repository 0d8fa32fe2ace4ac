"""Extract-load with a real Airbyte connector and no Airbyte platform: PyAirbyte runs source-faker
into the raw schema of the lab's warehouse.

It runs inside the lab's Airbyte environment (`.venv-airbyte/`, `/opt/airbyte-venv` in the image),
because PyAirbyte's pins cannot live beside Prefect's. The `elt` flow (flows/13_elt.py) starts it
as a subprocess and reads the one JSON line it prints last; you can run it by hand too:

    .venv-airbyte/bin/python airbyte/extract_load.py --raw-db .lab/warehouse/airbyte_raw.duckdb --records 1000

What it does:
1. Reads the source's config and stream list from `airbyte/source-faker.yaml`.
2. Runs the connector (installed at build time, next to this interpreter: never downloaded here).
3. Writes each stream into the raw tables; the connector's state is saved beside them
   (`raw._airbyte_state`), so the next run is incremental: it reads only what is new.
4. Optionally corrupts some of the records it just loaded (`--inject-bad-records`), the way a
   misbehaving upstream would, so the quarantine downstream has something to catch. Every
   corruption is written down in `raw._lab_injected_faults`.
5. Prints one line `ELT_RESULT {json}`: per stream, the records the connector emitted this run, the
   raw rows this run wrote (`loaded`: they must match), and the raw rows before and after.
"""

from __future__ import annotations

import argparse
import json
import os
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
# its config. PyAirbyte would otherwise start the connector twice more before each sync (`spec` to
# validate the config, `discover` for the catalog): several seconds of interpreter start-up each,
# the largest fixed cost of a sync (bench/elt.py). The config is still validated, against the file.
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
    parser.add_argument("--capture-metadata", action="store_true",
                        help="ask the installed connector for its spec and catalog, save them, and exit")
    parser.add_argument("--live-metadata", action="store_true",
                        help="ignore the saved spec and catalog: ask the connector (slower)")
    return parser.parse_args(argv)


def connector_version(name: str) -> str:
    from importlib.metadata import version

    return version(f"airbyte-{name}")


def use_saved_metadata(source, metadata_file: Path) -> bool:
    """Give PyAirbyte the saved spec and catalog, if they belong to the installed connector."""
    from airbyte_protocol.models import AirbyteCatalog, ConnectorSpecification

    if not metadata_file.exists():
        return False
    saved = json.loads(metadata_file.read_text())
    if saved.get("connector_version") != connector_version(saved["connector"]):
        print(f"{metadata_file.name} is for version {saved.get('connector_version')}, the installed connector is "
              f"{connector_version(saved['connector'])}: asking the connector (run --capture-metadata to refresh)")
        return False
    # PyAirbyte keeps both on the source once it has asked; there is no public setter.
    source._spec = ConnectorSpecification.model_validate(saved["spec"])
    source._discovered_catalog = AirbyteCatalog.model_validate(saved["catalog"])
    return True


def capture_metadata(source, name: str, metadata_file: Path) -> None:
    saved = {
        "connector": name,
        "connector_version": connector_version(name),
        "spec": json.loads(source._get_spec(force_refresh=True).model_dump_json(exclude_none=True)),
        "catalog": json.loads(source.discovered_catalog.model_dump_json(exclude_none=True)),
    }
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
        return SnowflakeCache(schema_name=spec["schema"], cache_dir=Path(tempfile.mkdtemp(prefix="airbyte-staging-")), **config)
    if args.raw_db is None:
        raise SystemExit("--raw-db is required for target duckdb")
    args.raw_db.parent.mkdir(parents=True, exist_ok=True)
    spec = yaml.safe_load((HERE / "destination-duckdb.yaml").read_text())
    # PyAirbyte stages batches in files under cache_dir before loading them: beside the raw file,
    # never the working directory (a flow's is flows/, read-only in Docker).
    return ab.DuckDBCache(db_path=str(args.raw_db), schema_name=spec["schema"],
                          cache_dir=args.raw_db.parent / "airbyte-staging")


def raw_counts(cache, streams: list[str]) -> dict[str, dict]:
    """Rows and the latest extraction time per raw table (zero rows for a table not made yet)."""
    from sqlalchemy import text

    counts = {}
    with cache.processor.get_sql_connection() as con:
        for stream in streams:
            table = f"{cache.schema_name}.{stream}"
            try:
                rows, latest = con.execute(text(f"select count(*), max(_airbyte_extracted_at) from {table}")).one()
            except Exception:  # the table does not exist before the first sync
                con.rollback()
                rows, latest = 0, None
            counts[stream] = {"rows": rows, "latest_extracted_at": latest}
    return counts


def rows_loaded_since(cache, streams: list[str], before: dict[str, dict]) -> dict[str, int]:
    """Raw rows this run wrote (inserted or updated), by their extraction time."""
    from sqlalchemy import text

    loaded = {}
    with cache.processor.get_sql_connection() as con:
        for stream in streams:
            since = before[stream]["latest_extracted_at"]
            where = "" if since is None else " where _airbyte_extracted_at > :since"
            loaded[stream] = con.execute(text(f"select count(*) from {cache.schema_name}.{stream}{where}"),
                                         {"since": since}).scalar()
    return loaded


def inject_faults(cache, how_many: int, before: dict[str, dict]) -> list[dict]:
    """Corrupt `how_many` of the rows this run loaded, in turn through FAULTS; log each one."""
    from sqlalchemy import text

    schema = cache.schema_name
    injected = []
    with cache.processor.get_sql_connection() as con:
        con.execute(text(f"create table if not exists {schema}._lab_injected_faults "
                         "(stream varchar, raw_id varchar, fault varchar, injected_at timestamp default current_timestamp)"))
        for n in range(how_many):
            stream, assignment, fault = FAULTS[n % len(FAULTS)]
            since = before.get(stream, {}).get("latest_extracted_at")
            where = "_airbyte_raw_id not in (select raw_id from {s}._lab_injected_faults)".format(s=schema)
            if since is not None:
                where += " and _airbyte_extracted_at > :since"
            raw_id = con.execute(text(f"select _airbyte_raw_id from {schema}.{stream} where {where} "
                                      "order by _airbyte_raw_id limit 1"), {"since": since}).scalar()
            if raw_id is None:  # this run loaded nothing (more) to corrupt in that stream
                continue
            con.execute(text(f"update {schema}.{stream} set {assignment} where _airbyte_raw_id = :raw_id"), {"raw_id": raw_id})
            con.execute(text(f"insert into {schema}._lab_injected_faults (stream, raw_id, fault) values (:s, :r, :f)"),
                        {"s": stream, "r": raw_id, "f": fault})
            injected.append({"stream": stream, "raw_id": raw_id, "fault": fault})
        con.commit()
    return injected


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

    import airbyte as ab

    started = time.perf_counter()
    # The connector was installed next to this interpreter at build time (airbyte/requirements.lock).
    executable = Path(sys.executable).with_name(source_spec["connector"])
    if not executable.exists():
        raise SystemExit(f"{executable} is missing: the Airbyte environment is incomplete; "
                         "delete .venv-airbyte/ and run ./lab up to rebuild it (in Docker: rebuild the lab image)")
    source = ab.get_source(source_spec["connector"], config=config, local_executable=str(executable))
    metadata_file = args.source.with_name(args.source.stem + METADATA_SUFFIX)
    if args.capture_metadata:
        capture_metadata(source, source_spec["connector"], metadata_file)
        return 0
    if not args.live_metadata:
        use_saved_metadata(source, metadata_file)
    source.select_streams(streams)
    cache = make_cache(args)
    before = raw_counts(cache, streams)
    result = source.read(cache=cache, force_full_refresh=args.full_refresh)
    read_seconds = time.perf_counter() - started
    emitted = dict(result._progress_tracker.stream_read_counts)  # per stream, this run (no public API)
    loaded = rows_loaded_since(cache, streams, before)
    injected = inject_faults(cache, args.inject_bad_records, before) if args.inject_bad_records else []
    after = raw_counts(cache, streams)

    summary = {
        "target": args.target,
        "raw_db": str(args.raw_db) if args.raw_db else None,
        "schema": cache.schema_name,
        "records_setting": config["count"],
        "full_refresh": args.full_refresh,
        "seconds": round(time.perf_counter() - started, 3),
        "read_seconds": round(read_seconds, 3),
        "streams": {
            stream: {"emitted": emitted.get(stream, 0), "loaded": loaded[stream],
                     "raw_rows_before": before[stream]["rows"], "raw_rows_after": after[stream]["rows"]}
            for stream in streams
        },
        "injected_faults": injected,
    }
    print(RESULT_PREFIX + json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
