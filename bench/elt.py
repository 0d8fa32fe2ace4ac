"""What the ELT pipeline's extract-load costs, next to the connector alone and DuckDB alone.

    .venv/bin/python bench/elt.py [--sizes 10000,100000,1000000] [--rounds 1] [--out bench/results/elt-<timestamp>.json]

For each size (source-faker's `count`: about 2*count+100 records across users, purchases, products),
first one untimed-for-the-ratios run saves the connector's output to a file (reported as
`connector_to_file`), then per round, the order of the variants rotated from round to round so that
machine noise hits every variant alike:
  connector_alone  `source-faker read --config cfg.json --catalog catalog.json > /dev/null`: the
                   connector's own emit rate, the floor. The catalog is `source-faker discover`'s,
                   all three streams incremental/append on updated_at, no state (a full sync).
  extract_load     `.venv-airbyte/bin/python airbyte/extract_load.py --raw-db <fresh file>`: what the
                   lab runs (airbyte/duckdb_loader.py: the connector's records go chunk by chunk to
                   DuckDB's JSON reader while it runs). Timed as the whole subprocess (wall) and by
                   its own `read_seconds`. `--loader pyairbyte` times PyAirbyte's cache instead
                   (needs LAB_WITH_PYAIRBYTE=1).
  dbt_build        `dbt build` on a fresh warehouse right after that load (timed on its own).
  duckdb_insert    DuckDB (.venv-airbyte's, the version the loader uses) bulk-loads the saved
                   RECORD messages into three typed tables in a fresh file: the loading floor.
Every subprocess's peak memory is the peak of the summed RSS of its whole process tree, sampled
every 0.2 s with psutil. Targets: extract-load adds <= 25% over the connector alone at 100k
records; extract-load peaks at <= 1 GB at 1M records. Reports medians and within-round ratios.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import yaml

REPO = Path(__file__).resolve().parent.parent
AIRBYTE_PYTHON = REPO / ".venv-airbyte" / "bin" / "python"
EXTRACT_LOAD = REPO / "airbyte" / "extract_load.py"
SOURCE_SPEC = REPO / "airbyte" / "source-faker.yaml"
DBT = REPO / ".venv" / "bin" / "dbt"
DBT_PROJECT = REPO / "dbt_project"
VARIANTS = ["connector_alone", "extract_load", "duckdb_insert"]  # rotated per round; dbt follows extract_load
SAMPLE_SECONDS = 0.2
TARGET_OVERHEAD = 1.25  # extract_load / connector_alone at 100k records
TARGET_PEAK_MB = 1024  # extract_load at 1M records

# DuckDB's own bulk load of the saved messages, run in the Airbyte venv (duckdb 1.4.3, PyAirbyte's).
# One pass keeps the RECORD messages (stream, emitted_at, data as JSON); then each stream becomes a
# typed table (json_transform to the structure DuckDB infers), the way PyAirbyte ends with typed
# columns. Prints the in-process seconds (without the interpreter's start) and the rows per table.
DUCKDB_INSERT_SCRIPT = r"""
import json, sys, time
import duckdb
messages, db = sys.argv[1], sys.argv[2]
con = duckdb.connect(db)
started = time.perf_counter()
con.execute(f'''create table messages as
    select record.stream as stream, record.emitted_at as emitted_at, record.data as data
    from read_ndjson('{messages}', columns={{'type': 'VARCHAR',
                     'record': 'STRUCT(stream VARCHAR, data JSON, emitted_at BIGINT)'}})
    where type = 'RECORD' ''')
rows = {}
for (stream,) in con.execute('select distinct stream from messages order by 1').fetchall():
    structure = con.execute('select json_group_structure(data) from messages where stream = ?', [stream]).fetchone()[0]
    con.execute(f'''create table "{stream}" as
        select unnest(json_transform(data, '{structure}')), emitted_at as _emitted_at
        from messages where stream = '{stream}' ''')
    rows[stream] = con.execute(f'select count(*) from "{stream}"').fetchone()[0]
con.execute('drop table messages')
con.execute('checkpoint')
con.close()
print(json.dumps({"seconds": time.perf_counter() - started, "rows": rows, "duckdb": duckdb.__version__}))
"""


# ---------------------------------------------------------------------------------------------
# Running a subprocess while sampling its process tree's memory.
# ---------------------------------------------------------------------------------------------
def tree_rss(root: psutil.Process) -> int:
    """Summed RSS of a process and all its descendants (0 for those gone between the calls)."""
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            continue
    return total


def run_measured(
    command: list[str] | str, *, env: dict[str, str], cwd: Path, stdout: Any, stderr: Any, shell: bool = False
) -> dict[str, Any]:
    """Run to completion; wall seconds, CPU seconds, exit code and peak summed RSS of the process tree."""
    peak = 0
    # CPU of every descendant that was waited for (a tree that reaps its own children counts whole):
    # with wall seconds it tells work from waiting, which matters on 2 busy cores.
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=stdout, stderr=stderr, shell=shell)
    root = psutil.Process(proc.pid)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(root))
            done.wait(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    returncode = proc.wait()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return {"seconds": seconds, "cpu_seconds": cpu, "returncode": returncode, "peak_rss_mb": peak / 2**20}


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def check(result: dict[str, Any], what: str, log: Path) -> None:
    if result["returncode"] != 0:
        raise RuntimeError(f"{what} failed (exit {result['returncode']}); the last lines of {log}:\n{tail(log)}")


# ---------------------------------------------------------------------------------------------
# The connector's inputs: its config from the lab's yaml, its catalog from `discover`.
# ---------------------------------------------------------------------------------------------
class Workspace:
    """A throwaway directory with the connector's inputs and the environment every run shares."""

    def __init__(self, root: Path):
        self.root = root
        self.spec = yaml.safe_load(SOURCE_SPEC.read_text())
        self.connector = str(AIRBYTE_PYTHON.with_name(self.spec["connector"]))
        # PyAirbyte writes logs and its batch files under these; keep them out of the repo.
        self.env = {
            **os.environ,
            "AIRBYTE_LOGGING_ROOT": str(root / "airbyte-logs"),
            "AIRBYTE_PROJECT_DIR": str(root / "airbyte-project"),
            "AIRBYTE_CACHE_ROOT": str(root / "airbyte-cache"),
            "AIRBYTE_OFFLINE_MODE": "1",
            "DO_NOT_TRACK": "1",
            "NO_LIVE_PROGRESS": "1",
        }
        self.catalog = root / "catalog.json"
        discovered = subprocess.run(
            [self.connector, "discover", "--config", str(self.config(10))],
            cwd=root,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        streams = [
            stream
            for line in discovered.stdout.splitlines()
            if line.startswith("{")
            for message in [json.loads(line)]
            if message["type"] == "CATALOG"
            for stream in message["catalog"]["streams"]
            if stream["name"] in self.spec["streams"]
        ]
        self.catalog.write_text(
            json.dumps(
                {
                    "streams": [
                        {
                            "stream": stream,
                            "sync_mode": "incremental",
                            "destination_sync_mode": "append",
                            "cursor_field": [self.spec["streams"][stream["name"]]["cursor_field"]],
                            "primary_key": [["id"]],
                        }
                        for stream in streams
                    ]
                }
            )
        )
        if sorted(s["name"] for s in streams) != sorted(self.spec["streams"]):
            raise RuntimeError(
                f"discover offered {[s['name'] for s in streams]}, the yaml wants {list(self.spec['streams'])}"
            )

    def config(self, count: int) -> Path:
        path = self.root / f"config-{count}.json"
        path.write_text(json.dumps({**self.spec["config"], "count": count}))
        return path


# ---------------------------------------------------------------------------------------------
# The variants.
# ---------------------------------------------------------------------------------------------
def connector_read(ws: Workspace, count: int, to: Path | None) -> dict[str, Any]:
    """source-faker alone, its messages to `to` (or /dev/null)."""
    log = ws.root / f"connector-{count}.stderr"
    with open(to or os.devnull, "wb") as out, open(log, "wb") as err:
        result = run_measured(
            [ws.connector, "read", "--config", str(ws.config(count)), "--catalog", str(ws.catalog)],
            env=ws.env,
            cwd=ws.root,
            stdout=out,
            stderr=err,
        )
    check(result, "source-faker read", log)
    return result


def count_records(messages: Path) -> dict[str, int]:
    """RECORD messages per stream in a saved connector output (a cheap substring scan)."""
    counts: dict[str, int] = {}
    with open(messages, "rb") as lines:
        for line in lines:
            if line.startswith(b'{"type":"RECORD"'):
                stream = json.loads(line)["record"]["stream"]
                counts[stream] = counts.get(stream, 0) + 1
    return counts


LOADER = "direct"  # --loader


def extract_load(ws: Workspace, count: int, raw_db: Path) -> dict[str, Any]:
    log = ws.root / f"extract-load-{count}.log"
    with open(log, "wb") as out:
        result = run_measured(
            [
                str(AIRBYTE_PYTHON),
                str(EXTRACT_LOAD),
                "--raw-db",
                str(raw_db),
                "--records",
                str(count),
                "--loader",
                LOADER,
            ],
            env=ws.env,
            cwd=ws.root,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    check(result, "extract_load.py", log)
    lines = [line for line in log.read_text().splitlines() if line.startswith("ELT_RESULT ")]
    if not lines:
        raise RuntimeError(f"extract_load.py printed no ELT_RESULT line; the last lines of {log}:\n{tail(log)}")
    summary = json.loads(lines[-1].removeprefix("ELT_RESULT "))
    bad = {s: c for s, c in summary["streams"].items() if c["emitted"] != c["loaded"] or c["raw_rows_before"] != 0}
    if bad:
        raise RuntimeError(f"extract_load.py was not a clean full sync: {bad}")
    result["read_seconds"] = summary["read_seconds"]
    result["inner_seconds"] = summary["seconds"]
    result["records"] = {s: c["loaded"] for s, c in summary["streams"].items()}
    return result


def dbt_build(ws: Workspace, raw_db: Path, warehouse: Path) -> dict[str, Any]:
    state = ws.root / "dbt"
    env = {
        **ws.env,
        "DBT_TARGET": "duckdb",
        "LAB_WAREHOUSE_PATH": str(warehouse),
        "LAB_AIRBYTE_RAW_PATH": str(raw_db),
        "DBT_TARGET_PATH": str(state / "target"),
        "DBT_LOG_PATH": str(state / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    log = ws.root / "dbt-build.log"
    with open(log, "wb") as out:
        result = run_measured(
            [str(DBT), "build", "--profiles-dir", str(DBT_PROJECT), "--project-dir", str(DBT_PROJECT)],
            env=env,
            cwd=ws.root,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    check(result, "dbt build", log)
    return result


def duckdb_insert(ws: Workspace, messages: Path, db: Path) -> dict[str, Any]:
    out_path, log = ws.root / "duckdb-insert.out", ws.root / "duckdb-insert.stderr"
    with open(out_path, "wb") as out, open(log, "wb") as err:
        result = run_measured(
            [str(AIRBYTE_PYTHON), "-c", DUCKDB_INSERT_SCRIPT, str(messages), str(db)],
            env=ws.env,
            cwd=ws.root,
            stdout=out,
            stderr=err,
        )
    check(result, "the DuckDB bulk insert", log)
    inner = json.loads(out_path.read_text().splitlines()[-1])
    result.update(inner_seconds=inner["seconds"], records=inner["rows"], duckdb_version=inner["duckdb"])
    return result


# ---------------------------------------------------------------------------------------------
# One size: save the messages once, then the rounds.
# ---------------------------------------------------------------------------------------------
def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def bench_size(ws: Workspace, count: int, rounds: int) -> dict[str, Any]:
    size_dir = ws.root / f"count-{count}"
    size_dir.mkdir()
    messages = size_dir / "messages.jsonl"
    print(f"[{count}] saving the connector's output once (connector_to_file)", flush=True)
    saved = connector_read(ws, count, messages)
    records = count_records(messages)
    total = sum(records.values())
    print(
        f"[{count}]   {total} records {records} in {saved['seconds']:.1f} s, {messages.stat().st_size / 2**20:.0f} MB",
        flush=True,
    )

    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in [*VARIANTS, "dbt_build"]}
    for round_number in range(rounds):
        order = VARIANTS[round_number % len(VARIANTS) :] + VARIANTS[: round_number % len(VARIANTS)]
        for name in order:
            load = os.getloadavg()[0]  # other tenants of the machine skew every figure
            if name == "connector_alone":
                result = connector_read(ws, count, None)
            elif name == "extract_load":
                raw_db = size_dir / f"raw-{round_number}.duckdb"
                result = extract_load(ws, count, raw_db)
                if result["records"] != records:
                    raise RuntimeError(f"extract_load loaded {result['records']}, the connector emits {records}")
            else:
                result = duckdb_insert(ws, messages, size_dir / "duckdb-insert.duckdb")
                if result["records"] != records:
                    raise RuntimeError(f"the DuckDB insert loaded {result['records']}, the connector emits {records}")
                for path in size_dir.glob("duckdb-insert.duckdb*"):
                    path.unlink()
            result["load_average_1min_before"] = load
            samples[name].append(result)
            extra = f" (read_seconds {result['read_seconds']:.1f})" if name == "extract_load" else ""
            extra = f" (in-process {result['inner_seconds']:.1f})" if name == "duckdb_insert" else extra
            print(
                f"[{count}] round {round_number + 1}: {name:<16} {result['seconds']:8.1f} s{extra}  "
                f"peak {result['peak_rss_mb']:6.0f} MB",
                flush=True,
            )
            if name == "extract_load":  # transform what was just loaded, timed on its own
                dbt_load = os.getloadavg()[0]
                dbt = dbt_build(ws, raw_db, size_dir / f"warehouse-{round_number}.duckdb")
                dbt["load_average_1min_before"] = dbt_load
                samples["dbt_build"].append(dbt)
                print(
                    f"[{count}] round {round_number + 1}: {'dbt_build':<16} {dbt['seconds']:8.1f} s  "
                    f"peak {dbt['peak_rss_mb']:6.0f} MB",
                    flush=True,
                )
                for path in size_dir.glob(f"*-{round_number}.duckdb*"):
                    path.unlink()
    messages_mb = messages.stat().st_size / 2**20
    shutil.rmtree(size_dir)

    def seconds(name: str, key: str = "seconds") -> list[float]:
        return [s[key] for s in samples[name]]

    alone, el_wall, el_read = (
        seconds("connector_alone"),
        seconds("extract_load"),
        seconds("extract_load", "read_seconds"),
    )
    ddb_wall, ddb_inner = seconds("duckdb_insert"), seconds("duckdb_insert", "inner_seconds")
    med = {
        "connector_to_file_s": saved["seconds"],
        "connector_alone_s": median(alone),
        "extract_load_wall_s": median(el_wall),
        "extract_load_read_s": median(el_read),
        "duckdb_insert_s": median(ddb_inner),
        "duckdb_insert_wall_s": median(ddb_wall),
        "dbt_build_s": median(seconds("dbt_build")),
    }
    cpu_median_s = {name: round(median([s["cpu_seconds"] for s in runs]), 2) for name, runs in samples.items()}
    cpu_median_s["connector_to_file"] = round(saved["cpu_seconds"], 2)
    rows_per_s = {
        "connector_alone": total / med["connector_alone_s"],
        "connector_to_file": total / med["connector_to_file_s"],
        "extract_load_wall": total / med["extract_load_wall_s"],
        "extract_load_read": total / med["extract_load_read_s"],
        "duckdb_insert": total / med["duckdb_insert_s"],
        "duckdb_insert_wall": total / med["duckdb_insert_wall_s"],
    }
    # A round's variants saw similar machine load: the median of per-round ratios is the steadier figure.
    ratios = {
        "extract_load_wall_over_connector_alone": median([e / c for e, c in zip(el_wall, alone, strict=True)]),
        "extract_load_read_over_connector_alone": median([e / c for e, c in zip(el_read, alone, strict=True)]),
        "duckdb_insert_over_connector_alone": median([d / c for d, c in zip(ddb_inner, alone, strict=True)]),
        "dbt_build_over_extract_load_wall": median([d / e for d, e in zip(seconds("dbt_build"), el_wall, strict=True)]),
    }
    peaks = {name: max(s["peak_rss_mb"] for s in samples[name]) for name in samples}
    peaks["connector_to_file"] = saved["peak_rss_mb"]
    return {
        "count_setting": count,
        "records": records,
        "records_total": total,
        "messages_file_mb": round(messages_mb, 1),
        "median_s": {k: round(v, 2) for k, v in med.items()},
        "rows_per_s": {k: round(v) for k, v in rows_per_s.items()},
        "ratios": {k: round(v, 2) for k, v in ratios.items()},
        "peak_rss_mb": {k: round(v) for k, v in peaks.items()},
        "cpu_median_s": cpu_median_s,
        "samples": {
            name: [
                {k: (round(v, 3) if isinstance(v, float) else v) for k, v in s.items() if k != "records"} for s in runs
            ]
            for name, runs in samples.items()
        },
        "duckdb_insert_engine": samples["duckdb_insert"][0]["duckdb_version"] if samples["duckdb_insert"] else None,
    }


def versions() -> dict[str, str]:
    # PyAirbyte (`airbyte`) is opt-in (LAB_WITH_PYAIRBYTE=1): None when it is not installed.
    probe = (
        "import importlib.metadata as m, json; print(json.dumps({p: next((d.version for d in "
        "m.distributions(name=p)), None) for p in ['airbyte', 'airbyte-cdk', 'airbyte-source-faker', 'duckdb']}))"
    )
    found = json.loads(
        subprocess.run([str(AIRBYTE_PYTHON), "-c", probe], capture_output=True, text=True, check=True).stdout
    )
    dbt = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "python"),
            "-c",
            "import importlib.metadata as m; print(m.version('dbt-core'), m.version('dbt-duckdb'), m.version('duckdb'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {
        **{f"airbyte_venv:{k}": v for k, v in found.items()},
        "dbt-core": dbt[0],
        "dbt-duckdb": dbt[1],
        "lab_venv:duckdb": dbt[2],
    }


def code_under_test() -> dict[str, str]:
    """The commit and extract_load.py's hash: the loader may change between two runs of this bench."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    code = EXTRACT_LOAD.read_bytes() + (EXTRACT_LOAD.parent / "duckdb_loader.py").read_bytes()
    return {"git_head": commit, "loader_sha256": hashlib.sha256(code).hexdigest()[:16], "loader": LOADER}


def print_table(sizes: list[dict[str, Any]]) -> None:
    header = (
        f"{'records':>9} {'alone r/s':>10} {'EL wall r/s':>12} {'EL read r/s':>12} {'duckdb r/s':>11} "
        f"{'EL/alone wall':>14} {'EL/alone read':>14} {'dbt s':>7} {'EL peak MB':>11} {'dbt peak MB':>12}"
    )
    print(header)
    print("-" * len(header))
    for s in sizes:
        r, q, p = s["rows_per_s"], s["ratios"], s["peak_rss_mb"]
        print(
            f"{s['records_total']:>9} {r['connector_alone']:>10} {r['extract_load_wall']:>12} {r['extract_load_read']:>12} "
            f"{r['duckdb_insert']:>11} {q['extract_load_wall_over_connector_alone']:>14} "
            f"{q['extract_load_read_over_connector_alone']:>14} {s['median_s']['dbt_build_s']:>7} "
            f"{p['extract_load']:>11} {p['dbt_build']:>12}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="source-faker counts, comma-separated")
    parser.add_argument(
        "--rounds", type=int, default=1, help="rounds per size (1M records takes 10-20 minutes a round)"
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results" / f"elt-{time.strftime('%Y%m%dT%H%M%S')}.json"
    )
    parser.add_argument(
        "--loader",
        choices=["direct", "pyairbyte"],
        default="direct",
        help="extract_load.py's loader (pyairbyte needs LAB_WITH_PYAIRBYTE=1)",
    )
    args = parser.parse_args()
    global LOADER
    LOADER = args.loader
    sizes = [int(size) for size in args.sizes.split(",") if size]

    code_at_start = code_under_test()
    root = Path(tempfile.mkdtemp(prefix="bench-elt-"))
    try:
        ws = Workspace(root)
        results = [bench_size(ws, count, args.rounds) for count in sizes]
    finally:
        shutil.rmtree(root, ignore_errors=True)

    by_count = {s["count_setting"]: s for s in results}
    targets = {}
    if 100000 in by_count:
        ratios = by_count[100000]["ratios"]
        targets["overhead_at_100k"] = {
            "target": f"extract_load / connector_alone <= {TARGET_OVERHEAD}",
            "wall": ratios["extract_load_wall_over_connector_alone"],
            "read_seconds": ratios["extract_load_read_over_connector_alone"],
            "met_wall": ratios["extract_load_wall_over_connector_alone"] <= TARGET_OVERHEAD,
            "met_read_seconds": ratios["extract_load_read_over_connector_alone"] <= TARGET_OVERHEAD,
        }
    if 1000000 in by_count:
        peak = by_count[1000000]["peak_rss_mb"]["extract_load"]
        targets["peak_memory_at_1m"] = {
            "target": f"extract_load peak RSS (process tree) <= {TARGET_PEAK_MB} MB",
            "extract_load_mb": peak,
            "met": peak <= TARGET_PEAK_MB,
        }
    report = {
        "benchmark": "elt",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join([sys.executable, *sys.argv]),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
            "load_average_at_end": os.getloadavg(),
        },
        "versions": versions(),
        "code_at_start": code_at_start,
        "code_at_end": code_under_test(),
        "source_config": {k: v for k, v in yaml.safe_load(SOURCE_SPEC.read_text())["config"].items() if k != "count"},
        "rounds": args.rounds,
        "method": {
            "connector_alone": "source-faker read > /dev/null, discovered catalog, all streams incremental/append on updated_at, no state",
            "extract_load_wall": "airbyte/extract_load.py as a subprocess, fresh raw DuckDB file: interpreter start to exit",
            "extract_load_read": "extract_load.py's own read_seconds: get_source + source.read into the cache",
            "duckdb_insert": "duckdb (airbyte venv) read_ndjson of the saved messages, RECORDs only, into 3 typed tables; in-process seconds",
            "dbt_build": "dbt build on a fresh warehouse file, the raw file attached read-only",
            "peak_rss": f"summed RSS of the process tree, sampled every {SAMPLE_SECONDS} s (psutil)",
            "cpu": "user+sys seconds of the process tree (getrusage RUSAGE_CHILDREN around each run)",
            "ratios": "median over rounds of each round's ratio",
        },
        "targets": targets,
        "sizes": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print_table(results)
    print(json.dumps(targets, indent=2))
    print(f"full report: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
