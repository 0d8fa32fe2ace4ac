"""What Prefect costs on Dask, and whether module 08's design still gets a real speedup.

    .venv/bin/python bench/dask_overhead.py [--rounds 3] [--noop-tasks 200] [--out bench/results/dask_overhead.json]

Starts its own Prefect server (free port, throwaway PREFECT_HOME) and its own Dask cluster
(scheduler + 2 worker processes with 1 thread each, free ports, like the lab's; each worker in its
own session, see Stack), then, rounds interleaved so
machine noise hits every subject alike, and medians reported:
  (a) flows/08_dask.py's `dask-crunch` flow (80 chunks of ~0.13 s of CPU work in 2 batches) on the cluster,
      against the same flow on one thread (sequential). Target: speedup >= 1.5x.
  (b) per-task overhead: N no-op functions through raw `client.map`, against N no-op Prefect task
      runs mapped with DaskTaskRunner: stock Prefect (a second cluster whose workers, like this
      process while it submits, run without the lab's speed-ups and with Dask's default settings),
      the lab's Prefect (workshop_lab/prefect_speedups/__init__.py, as every lab process has it; the lab's
      Dask worker settings, workshop_lab/stack/services.py DASK_WORKER_ENV), the lab's with the task
      options module 08 uses (NO_CACHE, persist_result=False); and module 08's two designs for
      fine-grained work: the same N items in 4 batch task runs, and in one task run that maps them
      with plain Dask (get_dask_client). Timed from first submission to last result, inside the flow.
      Target: Prefect-on-Dask's per-item overhead <= 10x raw Dask's.
Then one profiled Prefect no-op run: cProfile in the flow process and Dask's own sampling profiler
(`client.profile()`, switched on for that run where the lab's settings keep it off) in the workers;
the top entries go into the JSON.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import free_port  # bench/ is on sys.path when a bench runs as a script

from workshop_lab.stack.services import DASK_TICK_INTERVAL, DASK_WORKER_ENV

# The lab's Dask setting, as every lab process has it (workshop_lab/stack/services.py): this process runs
# the sequential flow and submits the Dask one, like a lab flow run. Before Dask is imported.
os.environ["DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL"] = DASK_TICK_INTERVAL

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FLOW_FILE = REPO / "flows" / "08_dask.py"


def wait_for(check: Callable[[], bool], what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up within {timeout:.0f}s")
        time.sleep(0.3)


def prefect_healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return response.read().strip() == b"true"
    except OSError:
        return False


class Stack:
    """A Prefect server and a Dask cluster of our own; environment set for this process too."""

    def __init__(self, home: Path):
        self.home = home
        self.procs: list[subprocess.Popen] = []
        prefect_port = free_port()
        self.api_url = f"http://127.0.0.1:{prefect_port}/api"
        self.scheduler = f"tcp://127.0.0.1:{free_port()}"  # the lab's workers (its Prefect speed-ups on)
        self.stock_scheduler = f"tcp://127.0.0.1:{free_port()}"  # the same without them: stock Prefect
        self.env = {
            **os.environ,
            "PREFECT_HOME": str(home / "prefect"),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DASK_SCHEDULER_ADDRESS": self.scheduler,
            "PREFECT_LOCAL_STORAGE_PATH": str(home / "results"),
        }
        self.start([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(prefect_port)])
        # Lab: the lab's Dask worker settings (workshop_lab/stack/services.py). Stock: Prefect without the
        # lab's speed-ups (workshop_lab/prefect_speedups/__init__.py), Dask with its default tick and profiler.
        stock_env = {"LAB_PREFECT_SPEEDUPS": "0", "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": "20ms"}
        for scheduler, extra_env in ((self.scheduler, DASK_WORKER_ENV), (self.stock_scheduler, stock_env)):
            self.start(
                [
                    str(BIN / "dask"),
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    scheduler.rsplit(":", 1)[1],
                    "--dashboard-address",
                    f"127.0.0.1:{free_port()}",
                ]
            )
            # The lab's shape: 2 worker processes, 1 thread each, started outside flows/ (as in the lab).
            # Each in its own session: with Linux's autogroup scheduling (sched_autogroup_enabled=1),
            # a busy machine shares CPU per session, and two workers under one nanny (--nworkers 2)
            # would together get the share of one process: no parallel speedup, whatever Dask does.
            for _ in range(2):
                self.start(
                    [
                        str(BIN / "dask"),
                        "worker",
                        scheduler,
                        "--nworkers",
                        "1",
                        "--nthreads",
                        "1",
                        "--host",
                        "127.0.0.1",
                        "--no-dashboard",
                        "--local-directory",
                        str(home / "dask"),
                    ],
                    extra_env,
                )
        os.environ.update(
            {
                k: self.env[k]
                for k in (
                    "PREFECT_HOME",
                    "PREFECT_API_URL",
                    "PREFECT_SERVER_ANALYTICS_ENABLED",
                    "DASK_SCHEDULER_ADDRESS",
                    "PREFECT_LOCAL_STORAGE_PATH",
                )
            }
        )
        wait_for(lambda: prefect_healthy(self.api_url), "the Prefect server")
        from distributed import Client

        # Not the process's default client: prefect-dask's DaskTaskRunner would then use this
        # client's cluster whatever address it was given (it asks distributed.get_client() first).
        self.client = Client(self.scheduler, timeout=60, set_as_default=False)
        self.client.wait_for_workers(2, timeout=120)
        with Client(self.stock_scheduler, timeout=60, set_as_default=False) as stock:
            stock.wait_for_workers(2, timeout=120)

    def start(self, command: list[str], extra_env: dict[str, str] | None = None) -> None:
        log = open(self.home / f"{Path(command[0]).name}-{command[1]}-{len(self.procs)}.log", "w")
        self.procs.append(
            subprocess.Popen(
                command,
                env={**self.env, **(extra_env or {})},
                cwd=self.home,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def stop(self) -> None:
        self.client.close()
        for proc in reversed(self.procs):  # workers first, server last
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)


def autogroup() -> str:
    try:
        return Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip()
    except OSError:
        return "n/a"


def start_dask_profiler(dask_worker) -> bool:
    """In a Dask worker (via client.run): start Dask's sampling profiler if its settings left it off."""
    from tornado.ioloop import PeriodicCallback

    if "profile" in dask_worker.periodic_callbacks:
        return False
    for name, callback, every_ms in (
        ("profile", dask_worker.trigger_profile, 10),
        ("profile-cycle", dask_worker.cycle_profile, 1000),
    ):
        dask_worker.periodic_callbacks[name] = PeriodicCallback(callback, every_ms)
        dask_worker.periodic_callbacks[name].start()
    return True


def stop_dask_profiler(started: dict[str, bool], dask_worker) -> None:
    if started.get(dask_worker.address):
        for name in ("profile", "profile-cycle"):
            dask_worker.periodic_callbacks.pop(name).stop()


def noop(item: int) -> int:
    return item


def timed(run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def top_cprofile(profile: cProfile.Profile, limit: int = 25) -> list[dict[str, Any]]:
    stats = pstats.Stats(profile, stream=io.StringIO())
    total = stats.total_tt or 1.0
    rows = []
    for (filename, line, name), (_, _, _, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{Path(filename).parent.name}/{Path(filename).name}:{line}:{name}",
                "cumulative_s": round(cumulative, 3),
                "share": round(cumulative / total, 3),
            }
        )
    return sorted(rows, key=lambda row: -row["cumulative_s"])[:limit]


def top_dask_profile(tree: dict[str, Any], limit: int = 25) -> list[dict[str, Any]]:
    """Inclusive sample counts per function from the tree Dask's sampling profiler returns."""
    counts: dict[str, int] = {}
    total = tree.get("count", 0) or 1

    def walk(node: dict[str, Any], seen: frozenset[str]) -> None:
        for child in node.get("children", {}).values():
            desc = child.get("description", {})
            key = f"{Path(desc.get('filename', '?')).parent.name}/{Path(desc.get('filename', '?')).name}:{desc.get('name', '?')}"
            if key not in seen:  # count a function once per stack (recursion)
                counts[key] = counts.get(key, 0) + child.get("count", 0)
            walk(child, seen | {key})

    walk(tree, frozenset())
    rows = [{"function": k, "samples": v, "share": round(v / total, 3)} for k, v in counts.items()]
    return sorted(rows, key=lambda row: -row["samples"])[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--noop-tasks", type=int, default=60)
    parser.add_argument("--chunks", type=int, default=80)
    parser.add_argument("--batches", type=int, default=None, help="default: dask-crunch's own default")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "dask_overhead.json")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="dask-overhead-"))
    stack = Stack(home)
    try:
        # Import Prefect only now: it reads its settings (PREFECT_API_URL, ...) at import.
        from distributed import Client
        from prefect import flow, task
        from prefect.cache_policies import NO_CACHE
        from prefect.flows import load_flow_from_entrypoint
        from prefect_dask import DaskTaskRunner, get_dask_client

        dask_crunch = load_flow_from_entrypoint(f"{FLOW_FILE}:dask_crunch")
        module = sys.modules[dask_crunch.fn.__module__]
        sequential_crunch = module.sequential_crunch
        batches = args.batches or dask_crunch.parameters.properties["batches"]["default"]

        from workshop_lab import prefect_speedups

        runner = DaskTaskRunner(address=stack.scheduler)
        stock_runner = DaskTaskRunner(address=stack.stock_scheduler)

        @task(name="noop-stock")
        def noop_stock(item: int) -> int:
            return item

        @task(name="noop-trimmed", cache_policy=NO_CACHE, persist_result=False)
        def noop_trimmed(item: int) -> int:
            return item

        @task(name="noop-batch", cache_policy=NO_CACHE, persist_result=False)
        def noop_batch(items: list[int]) -> list[int]:
            return [noop(item) for item in items]

        @task(name="noop-fan-out", cache_policy=NO_CACHE, persist_result=False)
        def noop_fan_out(n: int) -> int:
            with get_dask_client() as client:
                return len(client.gather(client.map(noop, list(range(n)), pure=False)))

        # Each flow returns the time from its first submission to its last result: the per-flow
        # cost (creating the flow run, connecting to the cluster) is not a per-task cost.
        @flow(name="noop-on-dask", task_runner=runner)
        def prefect_noops(n: int, trimmed: bool) -> float:
            """N no-op task runs mapped onto Dask."""
            chosen = noop_trimmed if trimmed else noop_stock
            started = time.perf_counter()
            for future in chosen.map(list(range(n))):
                future.result()
            return time.perf_counter() - started

        @flow(name="noop-batched-on-dask", task_runner=runner)
        def prefect_noop_batches(n: int, task_runs: int = 4) -> float:
            """The same N items in a few batch task runs."""
            started = time.perf_counter()
            for future in noop_batch.map([list(range(start, n, task_runs)) for start in range(task_runs)]):
                future.result()
            return time.perf_counter() - started

        @flow(name="noop-fan-out-on-dask", task_runner=runner)
        def prefect_noop_fan_out(n: int) -> float:
            """The same N items as one task run that maps them with plain Dask."""
            started = time.perf_counter()
            noop_fan_out.submit(n).result()
            return time.perf_counter() - started

        stock_prefect_noops = prefect_noops.with_options(name="noop-on-dask-stock-prefect", task_runner=stock_runner)

        def without_lab_speedups(run: Callable[[], float]) -> Callable[[], float]:
            """Stock Prefect: the lab's speed-ups off in this process (and on the stock cluster's workers)."""

            def stock() -> float:
                prefect_speedups.set_applied(False)
                try:
                    return run()
                finally:
                    prefect_speedups.set_applied(True)

            return stock

        def raw_dask() -> float:
            started = time.perf_counter()
            stack.client.gather(stack.client.map(noop, list(range(args.noop_tasks)), pure=False))
            return time.perf_counter() - started

        crunch_workers: list[list[str]] = []  # which Dask workers each crunch_dask run used

        def whole(run: Callable[[], Any]) -> Callable[[], float]:
            return lambda: timed(run)

        def crunch_on_dask() -> float:
            started = time.perf_counter()
            result = dask_crunch(chunks=args.chunks, batches=batches)
            seconds = time.perf_counter() - started
            crunch_workers.append(result["workers"])
            return seconds

        subjects: dict[str, Callable[[], float]] = {
            "crunch_sequential": whole(lambda: sequential_crunch(chunks=args.chunks, batches=batches)),
            "crunch_dask": crunch_on_dask,
            "noop_raw_dask": raw_dask,
            "noop_prefect_stock": without_lab_speedups(lambda: stock_prefect_noops(args.noop_tasks, False)),
            "noop_prefect_lab": lambda: prefect_noops(args.noop_tasks, False),
            "noop_prefect_trimmed": lambda: prefect_noops(args.noop_tasks, True),
            "noop_prefect_batched": lambda: prefect_noop_batches(args.noop_tasks),
            "noop_prefect_fan_out": lambda: prefect_noop_fan_out(args.noop_tasks),
        }
        # Warm-up: the workers import Prefect on their first task; don't bill that to round 1.
        prefect_noops(4, True)
        without_lab_speedups(lambda: stock_prefect_noops(4, True))()
        raw_dask()
        samples: dict[str, list[float]] = {name: [] for name in subjects}
        load: dict[str, list[float]] = {name: [] for name in subjects}
        for round_number in range(args.rounds):
            for name, run in subjects.items():
                load[name].append(os.getloadavg()[0])  # other tenants of the machine skew every figure
                samples[name].append(run())
                print(f"round {round_number + 1}: {name:<22} {samples[name][-1]:7.2f} s", flush=True)
        median = {name: statistics.median(values) for name, values in samples.items()}

        # Profiled runs of no-op task runs, stock Prefect and the lab's: flow process (cProfile) and
        # workers (Dask's sampling profiler).
        profiles = {}
        for label, address, run in (
            ("stock", stack.stock_scheduler, without_lab_speedups(lambda: stock_prefect_noops(args.noop_tasks, False))),
            ("lab", stack.scheduler, lambda: prefect_noops(args.noop_tasks, False)),
        ):
            with Client(address, timeout=60, set_as_default=False) as client:
                # The lab's workers run without Dask's profiler (DASK_WORKER_ENV): on for this run only.
                started_profiler = client.run(start_dask_profiler)
                profile = cProfile.Profile()
                profiled_from = time.time()
                profile.enable()
                run()
                profile.disable()
                worker_tree = client.profile(start=profiled_from)
                client.run(stop_dask_profiler, started_profiler)
            profiles[label] = {
                "flow_process_cprofile_top": top_cprofile(profile),
                "dask_workers_sampled_top": top_dask_profile(worker_tree),
            }

        n = args.noop_tasks
        per_task_ms = {name: median[name] / n * 1000 for name in median if name.startswith("noop_")}
        report = {
            "benchmark": "dask_overhead",
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "load_average": os.getloadavg(),
                "sched_autogroup_enabled": autogroup(),
            },
            "cluster": "dask scheduler + 2 workers x 1 thread, own Prefect server, all on this machine",
            "rounds": args.rounds,
            "samples_s": samples,
            "load_average_1min_before_each_sample": load,
            "median_s": {k: round(v, 3) for k, v in median.items()},
            "a_crunch": {
                "chunks": args.chunks,
                "batches": batches,
                "sequential_s": round(median["crunch_sequential"], 3),
                "dask_s": round(median["crunch_dask"], 3),
                "speedup": round(median["crunch_sequential"] / median["crunch_dask"], 2),
                "target": ">= 1.5",
                # Rounds are interleaved, so a round's two runs saw similar machine load: their ratio is steadier.
                "dask_workers_per_run": crunch_workers[-args.rounds :],
                "speedup_median_of_rounds": round(
                    statistics.median(
                        seq / dsk for seq, dsk in zip(samples["crunch_sequential"], samples["crunch_dask"], strict=True)
                    ),
                    2,
                ),
            },
            "b_overhead": {
                "noop_tasks": n,
                "per_item_ms": {k: round(v, 2) for k, v in per_task_ms.items()},
                "ratio_to_raw_dask": {k: round(v / per_task_ms["noop_raw_dask"], 1) for k, v in per_task_ms.items()},
                "note": (
                    "per item = median time from first submission to last result / N. stock, lab and trimmed "
                    "make one Prefect task run per item: stock = Prefect as released; lab = the same task with "
                    "the lab's Prefect speed-ups (workshop_lab/prefect_speedups/__init__.py) and Dask worker settings (workshop_lab/stack/services.py DASK_WORKER_ENV); trimmed = lab + "
                    "NO_CACHE, persist_result=False. batched and fan_out are module 08's designs (lab)."
                ),
                "target": "Prefect-on-Dask per-item overhead <= 10x raw Dask's",
            },
            "profile": profiles,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps({k: report[k] for k in ("median_s", "a_crunch", "b_overhead")}, indent=2))
        print(f"full report (with profiles): {args.out}")
    finally:
        stack.stop()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
