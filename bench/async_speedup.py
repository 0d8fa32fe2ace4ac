"""How much module 06's concurrent awaiting gains over the same requests made one by one.

    .venv/bin/python bench/async_speedup.py [--rounds 3] [--latency-ms 300] [--out bench/results/async_speedup.json]

Starts its own upstream (`python -m workshop_lab.course_services.upstream` on a free port, UPSTREAM_LATENCY_MS set)
and its own Prefect server (free port, throwaway PREFECT_HOME), then runs flows/06_async.py's
`async-weather` flow `--rounds` times (after one warm-up run). Each run times, in the same flow
run, the baseline (the 7 requests as task runs awaited one by one: what synchronous code costs),
the same task runs gathered (`asyncio.gather`), and the 7 requests gathered inside one task run.
Reports the medians and the ratios to the baseline. Target: speedup >= 3x.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import free_port  # bench/ is on sys.path when a bench runs as a script

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FLOW_FILE = REPO / "flows" / "06_async.py"


def answers(url: str, expected: bytes | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return expected is None or response.read().strip() == expected
    except OSError:
        return False


def wait_for(url: str, what: str, expected: bytes | None = None, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not answers(url, expected):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f}s")
        time.sleep(0.3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-ms", type=int, default=300)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "async_speedup.json")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="async-speedup-"))
    prefect_port, upstream_port = free_port(), free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_API_URL": f"http://127.0.0.1:{prefect_port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "LAB_UPSTREAM_URL": f"http://127.0.0.1:{upstream_port}",
        "UPSTREAM_LATENCY_MS": str(args.latency_ms),
    }
    procs = []
    for name, command in (
        (
            "prefect-server",
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(prefect_port)],
        ),
        ("upstream", [sys.executable, "-m", "workshop_lab.course_services.upstream", "--port", str(upstream_port)]),
    ):
        log = open(home / f"{name}.log", "w")
        procs.append(
            subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        )
    try:
        os.environ.update(
            {
                k: env[k]
                for k in ("PREFECT_HOME", "PREFECT_API_URL", "PREFECT_SERVER_ANALYTICS_ENABLED", "LAB_UPSTREAM_URL")
            }
        )
        wait_for(f"{env['LAB_UPSTREAM_URL']}/health", "the upstream")
        wait_for(f"{env['PREFECT_API_URL']}/health", "the Prefect server", b"true")
        from prefect.flows import load_flow_from_entrypoint  # after PREFECT_API_URL is set

        async_weather = load_flow_from_entrypoint(f"{FLOW_FILE}:async_weather")
        asyncio.run(async_weather(latency_ms=args.latency_ms))  # warm-up: imports, first API calls
        results = []
        for round_number in range(args.rounds):
            results.append(asyncio.run(async_weather(latency_ms=args.latency_ms)))
            print(
                f"round {round_number + 1}: one by one {results[-1]['sequential_s']:.2f} s, concurrent task runs "
                f"{results[-1]['concurrent_s']:.2f} s, inside one task {results[-1]['one_task_s']:.2f} s",
                flush=True,
            )
        sequential = statistics.median(r["sequential_s"] for r in results)
        concurrent = statistics.median(r["concurrent_s"] for r in results)
        one_task = statistics.median(r["one_task_s"] for r in results)
        report = {
            "benchmark": "async_speedup",
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_average": os.getloadavg()},
            "requests_per_variant": 7,
            "upstream_latency_ms": args.latency_ms,
            "rounds": args.rounds,
            "samples_s": {key: [r[f"{key}_s"] for r in results] for key in ("sequential", "concurrent", "one_task")},
            "baseline": "the same 7 async task calls awaited one by one (what sync code costs)",
            "median_sequential_s": round(sequential, 3),
            "median_concurrent_s": round(concurrent, 3),
            "median_one_task_s": round(one_task, 3),
            "floor_s": {
                "sequential": round(7 * args.latency_ms / 1000, 3),
                "concurrent": round(args.latency_ms / 1000, 3),
            },
            "speedup_concurrent_task_runs": round(sequential / concurrent, 2),
            "speedup_one_task": round(sequential / one_task, 2),
            "target": ">= 3 (module 06's recommended design for many small requests: gather inside one task)",
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps(report, indent=2))
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
