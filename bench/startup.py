"""Start-up time and idle memory of the lab, next to a bare Prefect server on the same machine.

    .venv/bin/python bench/startup.py [--rounds 3] [--no-compose] [--out bench/results/startup.json]

Per round, interleaved so that machine noise hits every subject alike:
  bare      `prefect server start` on a fresh PREFECT_HOME until /api/health answers true:
            the floor, since everything else should start in parallel with it.
  embedded  `./lab up --no-first-flow` on a fresh LAB_HOME until it returns (every service healthy).
            "first": the venv has no migrated template database yet, so the server's start makes it
            (workshop_lab/stack/prefect_database.py: the first `up` after install or a Prefect upgrade);
            "fresh": a new LAB_HOME, started from the template (any later fresh start, `./lab reset`).
  compose   `docker compose up --wait` with the image already built, fresh volumes.
and each again "warm" (second start on the data the first one left). Reports medians, the ratios
to the bare server, the idle stack's resident memory (embedded: sum of RSS of every lab process;
compose: `docker stats`), and the lab image's size. Figures go into README.md's performance section.
"""

from __future__ import annotations

import argparse
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

import psutil
from _common import free_port  # bench/ is on sys.path when a bench runs as a script

from workshop_lab.stack.prefect_database import template_path
from workshop_lab.stack.settings import PORT_SETTINGS

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PREFECT = str(Path(sys.executable).parent / "prefect")
IDLE_SETTLE_SECONDS = 20


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().strip() == b"true"
    except OSError:
        return False


def bare_server(home: Path) -> float:
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    started = time.monotonic()
    proc = subprocess.Popen(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while not healthy(f"http://127.0.0.1:{port}/api/health"):
            if proc.poll() is not None or time.monotonic() - started > 300:
                raise RuntimeError("bare prefect server did not start")
            time.sleep(0.1)
        return time.monotonic() - started
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def lab_env(home: Path) -> dict[str, str]:
    env = {**os.environ, "LAB_HOME": str(home)}
    for name in PORT_SETTINGS:
        env[name] = str(free_port())
    return env


def embedded_up(env: dict[str, str]) -> float:
    started = time.monotonic()
    subprocess.run(
        [PYTHON, "-m", "workshop_lab", "up", "--no-first-flow"],
        env=env,
        cwd=REPO,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.monotonic() - started


def embedded_down(env: dict[str, str]) -> None:
    subprocess.run([PYTHON, "-m", "workshop_lab", "down"], env=env, cwd=REPO, check=True, stdout=subprocess.DEVNULL)


def embedded_rss(home: Path) -> int:
    total = 0
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("LAB_INSTANCE") == str(home):
                total += proc.memory_info().rss
        except psutil.Error:
            continue
    return total


def compose(project: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", "compose", "--project-name", project, *args],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )


def compose_up(project: str, env: dict[str, str]) -> float:
    started = time.monotonic()
    compose(project, env, "up", "--wait")
    return time.monotonic() - started


def compose_memory(project: str, env: dict[str, str]) -> int:
    ids = compose(project, env, "ps", "--quiet").stdout.split()
    stats = subprocess.run(
        ["docker", "stats", "--no-stream", "--format", "{{json .}}", *ids], capture_output=True, text=True, check=True
    )
    units = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "kB": 1e3, "MB": 1e6, "GB": 1e9}
    total = 0
    for line in stats.stdout.splitlines():
        used = json.loads(line)["MemUsage"].split("/")[0].strip()
        number = used.rstrip("BKMGikb")
        total += int(float(number) * units[used[len(number) :]])
    return total


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-compose", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "startup.json")
    args = parser.parse_args()
    use_compose = (
        not args.no_compose
        and shutil.which("docker")
        and subprocess.run(["docker", "info"], capture_output=True).returncode == 0
    )

    image = "workflow-orchestration-lab:0.1.0"
    if use_compose:
        print("building the lab image (not timed)", flush=True)
        subprocess.run(["docker", "compose", "build"], cwd=REPO, check=True, capture_output=True)

    samples: dict[str, list[float]] = {
        k: []
        for k in (
            "bare_fresh",
            "bare_warm",
            "embedded_first",
            "embedded_fresh",
            "embedded_warm",
            "compose_fresh",
            "compose_warm",
        )
    }
    memory: dict[str, list[float]] = {"embedded_idle_rss_mb": [], "compose_idle_mb": []}
    for round_ in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            tmp_path = Path(tmp)
            samples["bare_fresh"].append(bare_server(tmp_path / "bare"))
            samples["bare_warm"].append(bare_server(tmp_path / "bare"))

            first_env = lab_env(tmp_path / "lab-first")
            try:
                template_path().unlink(missing_ok=True)  # a cache: this `up` makes it again
                samples["embedded_first"].append(embedded_up(first_env))
            finally:
                embedded_down(first_env)

            env = lab_env(tmp_path / "lab")
            try:
                samples["embedded_fresh"].append(embedded_up(env))
                time.sleep(IDLE_SETTLE_SECONDS)
                memory["embedded_idle_rss_mb"].append(embedded_rss(tmp_path / "lab") / 2**20)
                embedded_down(env)
                samples["embedded_warm"].append(embedded_up(env))
            finally:
                embedded_down(env)

            if use_compose:
                project = f"bench-{os.getpid()}-{round_}"
                cenv = {**lab_env(tmp_path / "unused"), "COMPOSE_PROJECT_NAME": project}
                try:
                    samples["compose_fresh"].append(compose_up(project, cenv))
                    time.sleep(IDLE_SETTLE_SECONDS)
                    memory["compose_idle_mb"].append(compose_memory(project, cenv) / 2**20)
                    compose(project, cenv, "stop")
                    samples["compose_warm"].append(compose_up(project, cenv))
                finally:
                    compose(project, cenv, "down", "--volumes")
        print(f"round {round_}: " + ", ".join(f"{k}={v[-1]:.1f}s" for k, v in samples.items() if v), flush=True)

    medians = {k: median(v) for k, v in samples.items()}
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
            "python": platform.python_version(),
        },
        "rounds": args.rounds,
        "seconds_median": medians,
        "samples": {k: [round(x, 2) for x in v] for k, v in samples.items()},
        "ratio_to_bare_server": {
            "embedded_first": round(medians["embedded_first"] / medians["bare_fresh"], 2),
            "embedded_fresh": round(medians["embedded_fresh"] / medians["bare_fresh"], 2),
            "embedded_warm": round(medians["embedded_warm"] / medians["bare_warm"], 2),
            **(
                {
                    "compose_fresh": round(medians["compose_fresh"] / medians["bare_fresh"], 2),
                    "compose_warm": round(medians["compose_warm"] / medians["bare_warm"], 2),
                }
                if use_compose
                else {}
            ),
        },
        "idle_memory_mb_median": {k: round(statistics.median(v)) for k, v in memory.items() if v},
    }
    if use_compose:
        size = subprocess.run(
            ["docker", "image", "inspect", image, "--format", "{{.Size}}"], capture_output=True, text=True, check=True
        )
        result["image_size_mb"] = round(int(size.stdout) / 1e6)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
