"""A learner's own run from their shell, with and without the lab's venv pointing it at the lab.

    .venv/bin/python bench/learner_shell.py [--rounds 3] [--out bench/results/learner_shell.json]

Starts one embedded lab of its own (own LAB_HOME and ports), then per round, interleaved:
  lab        `.venv/bin/python flows/00_hello_lab.py` from flows/, nothing exported: the venv's
             `.pth` (workshop_lab/stack/shell.py) points it at the running lab and its Dask cluster.
  baseline   the same command with `LAB_SHELL=0`: what every learner got before, Prefect's
             throwaway server for the run and a local Dask cluster (the run shows in no UI).
and the cost the hook adds to every interpreter start of the venv: `python -c pass`, hook on vs
off (median of 20 each). Reports medians and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import free_port  # bench/ is on sys.path when a bench runs as a script

from workshop_lab.stack.settings import PORT_SETTINGS

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.monotonic()
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}: {result.stderr[-2000:]}")
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "learner_shell.json")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench-learner-shell-"))
    # A learner's shell: the lab's settings (its ports, its state folder), no address exported.
    ports = {name: str(free_port()) for name in PORT_SETTINGS}
    shell = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DASK_", "LAB_"))}
    shell.update(ports, LAB_HOME=str(home))
    subprocess.run(
        [PYTHON, "-m", "workshop_lab", "up", "--no-first-flow"],
        env=shell,
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=600,
    )
    results: dict[str, list[float]] = {"lab": [], "baseline": [], "start_hook_on": [], "start_hook_off": []}
    try:
        for _ in range(args.rounds):
            results["lab"].append(timed([PYTHON, "00_hello_lab.py"], shell, REPO / "flows"))
            results["baseline"].append(timed([PYTHON, "00_hello_lab.py"], {**shell, "LAB_SHELL": "0"}, REPO / "flows"))
        for _ in range(20):
            results["start_hook_on"].append(timed([PYTHON, "-c", "pass"], shell, REPO))
            results["start_hook_off"].append(timed([PYTHON, "-c", "pass"], {**shell, "LAB_SHELL": "0"}, REPO))
    finally:
        subprocess.run([PYTHON, "-m", "workshop_lab", "down"], env=shell, cwd=REPO, capture_output=True, timeout=300)

    median = {name: statistics.median(values) for name, values in results.items()}
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "rounds": args.rounds,
        "seconds": results,
        "median_seconds": median,
        "run_from_shell_vs_throwaway_server": median["lab"] / median["baseline"],
        "interpreter_start_added_ms": 1000 * (median["start_hook_on"] - median["start_hook_off"]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"hello-lab from the shell: {median['lab']:.1f}s on the lab vs {median['baseline']:.1f}s with a throwaway server "
        f"({report['run_from_shell_vs_throwaway_server']:.2f}x); the hook adds {report['interpreter_start_added_ms']:.0f} ms "
        f"to an interpreter start ({1000 * median['start_hook_off']:.0f} ms without). -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
