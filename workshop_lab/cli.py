"""`./lab`: the lab's command line. Verbs follow a learner's day.

    ./lab up [--docker]        start the lab, deploy the flows, run a first flow, print the URLs
    ./lab status [--docker]    each service's health and URL, its restarts and last exit
    ./lab logs [SERVICE] [-f]  what the services printed (embedded: .lab/logs/)
    ./lab run DEPLOYMENT       run a deployment on the lab's worker, show its logs, say why it failed
    ./lab check NN             check your solution of exercise NN against the running lab
    ./lab env                  the lab's addresses as export lines, for another shell
    ./lab sql "QUERY"          query the warehouse (read-only; waits for a run that is writing it)
    ./lab deploy               deploy flows/prefect.yaml again (after adding a deployment)
    ./lab chaos kill SERVICE   crash a service on purpose (SIGKILL) and watch the lab bring it back
    ./lab down [--docker]      stop everything; your runs, results and warehouse are kept
    ./lab reset [--docker]     stop and wipe Prefect's database, results and the warehouse
    ./lab doctor               ports, memory, disk and Docker: what could stop the lab starting
    ./lab test [PYTEST ARGS]   run the whole test suite
    ./lab settings             print every setting with its default (the text of .env.example)

Without --docker, status/logs/chaos/down/reset act on whichever lab `up` started last.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from workshop_lab.stack import compose
from workshop_lab.stack.settings import (
    FIRST_FLOW_DEPLOYMENT,
    PORT_SETTINGS,
    REPO_ROOT,
    LabConfig,
    SettingError,
    env_example,
)
from workshop_lab.stack.supervisor import LabError, Supervisor, port_is_free, port_owner

LAB_MEMORY_BYTES = 1.5 * 2**30


def say(message: str) -> None:
    print(message, flush=True)


def uses_docker(args: argparse.Namespace, config: LabConfig) -> bool:
    return getattr(args, "docker", False) or config.docker_lab_is_up


def point_prefect_at_lab(config: LabConfig) -> None:
    """Make Prefect calls from this process go to the lab's server, not a personal profile."""
    os.environ["PREFECT_API_URL"] = config.api_url
    os.environ["PREFECT_HOME"] = str(config.prefect_home)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def print_urls(config: LabConfig) -> None:
    say(f"  Prefect UI       {config.ui_url}")
    say(f"  Prefect API      {config.api_url}  (docs: {config.ui_url}/docs)")
    say(f"  Dask dashboard   {config.dashboard_url}")
    say(f"  Dask scheduler   {config.scheduler_address}")
    say(f"  Flaky upstream   {config.upstream_url}  (chaos: {config.upstream_url}/chaos)")
    say(f"  Webhook inbox    {config.inbox_url}")


def run_first_flow(config: LabConfig) -> int:
    point_prefect_at_lab(config)
    from workshop_lab.runs import run_and_wait, table_artifact

    say(f"Running a first flow ({FIRST_FLOW_DEPLOYMENT}) through the worker on the Dask cluster...")
    outcome = run_and_wait(FIRST_FLOW_DEPLOYMENT, timeout=300)
    run_url = f"{config.ui_url}/runs/flow-run/{outcome.flow_run.id}"
    if not outcome.completed:
        say(f"The first flow ended {outcome.state_type}: {run_url}\nSee ./lab logs prefect-worker")
        return 1
    workers = sorted({row["dask_worker"] for row in table_artifact(outcome.flow_run.id, "hello-lab-workers")})
    say(f"First flow COMPLETED in {outcome.seconds:.1f}s, its tasks ran on {len(workers)} Dask worker(s): {run_url}")
    return 0


# --- verbs ---------------------------------------------------------------------------------
def cmd_up(args: argparse.Namespace, config: LabConfig) -> int:
    if args.docker:
        seconds = compose.up(config, say)
        config.run_dir.mkdir(parents=True, exist_ok=True)
        config.mode_file.write_text("docker\n")
        say(f"The Docker lab is up: every service healthy after {seconds:.1f}s.")
    else:
        if uses_docker(args, config):
            raise LabError("The Docker lab is running (./lab up --docker). Stop it first: ./lab down")
        timings = Supervisor(config).up(say)
        config.run_dir.mkdir(parents=True, exist_ok=True)
        config.mode_file.write_text("embedded\n")
        say(f"The lab is up: every service healthy after {timings['all']:.1f}s.")
    print_urls(config)
    code = 0 if args.no_first_flow else run_first_flow(config)
    say(
        "Your own code reaches this lab from the lab's venv, in any folder: .venv/bin/python flows/00_hello_lab.py,\n"
        '  .venv/bin/prefect deployment ls; another shell or Python: eval "$(./lab env)".\n'
        "  Exercises: flows/exercises/ (your files go in flows/mine/); check one with ./lab check NN."
    )
    say("Next: open the Prefect UI, then follow docs/workshop-guide.md. Stop with ./lab down.")
    return code


def cmd_status(args: argparse.Namespace, config: LabConfig) -> int:
    docker = uses_docker(args, config)
    states = compose.status(config) if docker else Supervisor(config).status()
    if args.json:
        print(json.dumps([vars(s) for s in states], indent=2))
    else:
        say(f"{'Docker' if docker else 'Embedded'} lab ({config.home if not docker else 'docker compose'}):")
        for s in states:
            if s.given_up:
                say(
                    f"  {s.name:<28} stopped — gave up after {s.crashes} crashes (last exit {s.last_exit}): "
                    f"./lab logs {s.name}; ./lab up starts it again"
                )
                continue
            mark = "healthy" if s.healthy else ("UNHEALTHY" if s.running else "stopped")
            say(f"  {s.name:<28} {mark:<10} {s.url:<32} {s.detail}{restart_history(s)}")
        if not docker:
            say(f"  warehouse: {config.warehouse_path}  results: {config.results_dir}")
        else:
            say("  warehouse and results: in the Docker lab's volumes (docker compose exec prefect-worker ls /data)")
        from workshop_lab import prefect_speedups  # loaded in every venv process already (the .pth)

        say(f"  {prefect_speedups.describe({**os.environ, **config.values})}")
    return 0 if states and all(s.healthy for s in states) else 1


def restart_history(state) -> str:
    """ "; restarts 2, last exit SIGKILL at 14:02:07 UTC", or nothing for a service that never exited."""
    if not state.restarts and not state.last_exit and not state.last_exit_at:
        return ""
    last_exit = f"last exit {state.last_exit or ''}".rstrip()
    when = f" at {state.last_exit_at[11:19]} UTC" if state.last_exit_at else ""
    return f"; restarts {state.restarts}, {last_exit}{when}"


def cmd_logs(args: argparse.Namespace, config: LabConfig) -> int:
    if uses_docker(args, config):
        compose.logs(args.service, args.follow)
        return 0
    supervisor = Supervisor(config)
    names = [args.service] if args.service else [s.name for s in supervisor.services] + ["watchdog"]
    unknown = [n for n in names if n not in supervisor.by_name and n != "watchdog"]
    if unknown:
        raise LabError(f"No service named {unknown[0]!r}. Services: {', '.join(supervisor.by_name)}")
    files = [supervisor.logfile(n) for n in names if supervisor.logfile(n).exists()]
    if not files:
        say(f"No logs yet in {config.logs_dir}: start the lab with ./lab up")
        return 0
    if args.follow:
        return subprocess.call(["tail", "-n", str(args.lines), "-F", *map(str, files)])
    for path in files:
        say(f"===== {path} =====")
        say("\n".join(path.read_text(errors="replace").splitlines()[-args.lines :]))
    return 0


def cmd_run(args: argparse.Namespace, config: LabConfig) -> int:
    """Run a deployment and tell its story: states and log lines as they come, why it did not complete."""
    point_prefect_at_lab(config)
    from workshop_lab.runs import (
        FINAL_OK,
        RunRefused,
        create_run,
        explain_failure,
        follow,
        parse_parameters,
        pool_polled,
    )
    from workshop_lab.stack import health

    try:
        parameters = parse_parameters(args.param)
        try:
            health.check_prefect_server(config.api_url)
        except health.Unhealthy:
            raise LabError(
                f"Nothing answers at {config.api_url}: the lab is not running. Start it with ./lab up"
            ) from None
        from prefect import get_client

        with get_client(sync_client=True) as client:
            deployment, flow_run = create_run(client, args.deployment, parameters)
            run_url = f"{config.ui_url}/runs/flow-run/{flow_run.id}"
            say(f"{args.deployment}: flow run {flow_run.name} created — {run_url}")
            flow_run, seconds = follow(client, flow_run.id, args.timeout, say)
            state = flow_run.state
            if not state or not state.is_final():
                still = state.type.value if state else "UNKNOWN"
                why = (
                    pool_polled(client, deployment.work_pool_name)
                    if still in ("SCHEDULED", "PENDING")
                    else "it is still running"
                )
                raise RunRefused(
                    f"{args.deployment}: still {still} after {seconds:.0f}s (--timeout {args.timeout:g}): {why}. {run_url}"
                )
            say(f"{args.deployment}: {state.type.value} after {seconds:.1f}s — {run_url}")
            if state.type.value != FINAL_OK:
                explain_failure(client, flow_run, say)
                return 1
            return 0
    except RunRefused as refused:
        print(f"lab: {refused}", file=sys.stderr)
        return 2


def cmd_deploy(args: argparse.Namespace, config: LabConfig) -> int:
    if uses_docker(args, config):
        return subprocess.call(
            compose.compose_command("run", "--rm", "setup", "python", "-m", "workshop_lab.stack.setup_lab", "--force"),
            cwd=REPO_ROOT,
        )
    from workshop_lab.stack.services import lab_environment

    env = {**os.environ, **lab_environment(config)}
    env.pop("LAB_INSTANCE")
    return subprocess.call([sys.executable, "-m", "workshop_lab.stack.setup_lab", "--force"], env=env)


def cmd_down(args: argparse.Namespace, config: LabConfig) -> int:
    if uses_docker(args, config):
        compose.down()
        say(
            "The Docker lab is stopped; its volumes (runs, results, warehouse) are kept. ./lab reset --docker wipes them."
        )
    else:
        say(
            "Stopping the embedded lab (the watchdog first, so it restarts nothing; then the worker; the server last)..."
        )
        stopped = Supervisor(config).stop()
        say(f"Stopped {', '.join(stopped)}." if stopped else "Nothing of the embedded lab was running.")
        say(f"Your data is kept in {config.home}. ./lab reset wipes it.")
    config.mode_file.unlink(missing_ok=True)
    return 0


def cmd_chaos(args: argparse.Namespace, config: LabConfig) -> int:
    """Crash a service on purpose: what the lab does next (restart it, or give up) is the lesson."""
    if uses_docker(args, config):
        container = compose.kill(args.service)
        say(
            f"Killed every process in {container} with SIGKILL (its main process exits 137, as in a crash); "
            "Docker's restart policy starts it again. Watch: ./lab status"
        )
    else:
        pids = Supervisor(config).kill(args.service)
        say(
            f"Killed {args.service} with SIGKILL (pid {pids[0]}"
            + (f" and {len(pids) - 1} child process(es)" if len(pids) > 1 else "")
            + "), as in a crash; the watchdog restarts it. Watch: ./lab status"
        )
    return 0


def cmd_reset(args: argparse.Namespace, config: LabConfig) -> int:
    docker = uses_docker(args, config)
    what = (
        "the Docker lab's volumes"
        if docker
        else f"{config.prefect_home}, {config.results_dir} and {config.warehouse_path.parent}"
    )
    if not args.yes:
        if not sys.stdin.isatty():
            raise LabError(f"reset wipes {what}. Confirm with: ./lab reset --yes")
        if (
            input(f"This stops the lab and deletes {what}: every run, result and warehouse table. Type 'yes': ").strip()
            != "yes"
        ):
            say("Nothing was deleted.")
            return 1
    if docker:
        compose.down(remove_volumes=True)
    else:
        Supervisor(config).stop()
        for path in (config.prefect_home, config.results_dir, config.warehouse_path.parent, config.home / "dask"):
            shutil.rmtree(path, ignore_errors=True)
    config.mode_file.unlink(missing_ok=True)
    say(f"Wiped {what}. ./lab up starts a fresh lab.")
    return 0


def cmd_doctor(args: argparse.Namespace, config: LabConfig) -> int:
    import psutil

    problems = 0
    say(f"Python {sys.version.split()[0]} at {sys.executable}")
    supervisor = Supervisor(config)
    lab_pids = {p.pid for p in supervisor.lab_processes()}
    host = config["LAB_BIND_ADDRESS"]
    for setting in PORT_SETTINGS:
        port = config.port(setting)
        if port_is_free(host, port):
            say(f"  port {port:<5} ({setting}) free")
            continue
        owner = port_owner(port)
        if any(f"pid {pid} " in owner for pid in lab_pids):
            say(f"  port {port:<5} ({setting}) used by this lab")
        else:
            problems += 1
            say(f"  port {port:<5} ({setting}) IN USE by {owner}: stop it or set {setting}=<free port> in .env")
    memory = psutil.virtual_memory()
    enough = memory.available >= LAB_MEMORY_BYTES
    problems += not enough
    say(
        f"Memory: {memory.available / 2**30:.1f} GiB available of {memory.total / 2**30:.1f} GiB "
        f"({'enough' if enough else 'TOO LITTLE'}: the idle lab uses about 0.9 GiB; 1.5 GiB free leaves room for runs)"
    )
    config.home.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(config.home).free
    problems += free < 2 * 2**30
    say(f"Disk: {free / 2**30:.1f} GiB free at {config.home} (the lab needs about 2 GiB; the Docker image 1.2 GB more)")
    ok, reason = compose.docker_engine()
    say(
        f"Docker: {'available' if ok else 'not available'} — {reason}"
        + ("" if ok else " (the embedded lab, ./lab up, needs no Docker)")
    )
    say("No problems found." if not problems else f"{problems} problem(s) found.")
    return 1 if problems else 0


def run_tests(pytest_args: list[str]) -> int:
    """`./lab test ARGS`: every argument goes to pytest untouched (argparse would eat `-x`)."""
    from workshop_lab.stack.shell import without_shell

    # The suite starts labs of its own: it must not take the learner's running lab's addresses.
    return subprocess.call(
        [sys.executable, "-m", "pytest", *pytest_args], cwd=REPO_ROOT, env=without_shell(dict(os.environ))
    )


def cmd_env(args: argparse.Namespace, config: LabConfig) -> int:
    """The running lab's addresses as `export` lines, for a shell or a Python outside the lab's venv."""
    import shlex

    from workshop_lab.stack.shell import shell_environment

    print("# The lab's addresses for this shell: eval \"$(./lab env)\" (the lab's own venv needs none of this).")
    for name, value in shell_environment(config).items():
        if value:
            print(f"export {name}={shlex.quote(value)}")
    return 0


def cmd_sql(args: argparse.Namespace, config: LabConfig) -> int:
    """One read-only query of the lab's warehouse; on the Docker lab it runs in the worker's container."""
    if uses_docker(args, config):
        return subprocess.call(
            compose.compose_command(
                "exec", "-T", "prefect-worker", "python", "-m", "workshop_lab.flow_tools.warehouse", args.query
            ),
            cwd=REPO_ROOT,
        )
    from workshop_lab.flow_tools.warehouse import WarehouseLocked, WarehouseQueryError, query_text

    try:
        print(query_text(args.query, config.warehouse_path, log=lambda line: print(line, file=sys.stderr)))
    except (WarehouseQueryError, WarehouseLocked) as exc:
        raise LabError(str(exc)) from None
    return 0


def cmd_check(args: argparse.Namespace, config: LabConfig) -> int:
    from workshop_lab.exercise_checks import check_exercise

    return check_exercise(args.exercise, args.file, config, say)


def cmd_settings(args: argparse.Namespace, config: LabConfig) -> int:
    print(env_example(), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="./lab", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, func, help: str, docker: bool = True) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=help, description=help)
        sub.set_defaults(func=func)
        if docker:
            sub.add_argument("--docker", action="store_true", help="act on the Docker Compose lab")
        return sub

    up = verb("up", cmd_up, "start the lab, deploy the flows and run a first flow")
    up.add_argument("--no-first-flow", action="store_true", help="only start and check the services")
    status = verb("status", cmd_status, "each service's health and URL, its restarts and last exit")
    status.add_argument("--json", action="store_true")
    logs = verb("logs", cmd_logs, "show what the services printed")
    logs.add_argument("service", nargs="?")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("-n", "--lines", type=int, default=60)
    run = verb("run", cmd_run, "run a deployment and wait for its final state", docker=False)
    run.add_argument("deployment", help="FLOW/DEPLOYMENT, e.g. hello-lab/hello-lab")
    run.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    run.add_argument("--timeout", type=float, default=600, help="seconds to wait for a final state (default 600)")
    verb("deploy", cmd_deploy, "deploy every flow in flows/prefect.yaml again")
    verb("down", cmd_down, "stop the lab and keep its data")
    chaos = verb("chaos", cmd_chaos, "break the lab on purpose, to watch it recover", docker=False)
    chaos_actions = chaos.add_subparsers(dest="action", required=True, metavar="ACTION")
    kill = chaos_actions.add_parser(
        "kill",
        help="SIGKILL a service and all its processes, as a crash would",
        description="SIGKILL a service and all its processes, as a crash would",
    )
    kill.add_argument(
        "service", help="e.g. prefect-worker, dask-worker-1 (Docker: dask-worker or dask-worker-2), upstream"
    )
    kill.add_argument("--docker", action="store_true", help="act on the Docker Compose lab")
    reset = verb("reset", cmd_reset, "stop the lab and wipe its data")
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    verb("doctor", cmd_doctor, "check ports, memory, disk and Docker", docker=False)
    test = verb("test", None, "run the whole test suite (pytest)", docker=False)
    test.add_argument("pytest_args", nargs="*", help="passed to pytest")
    verb("env", cmd_env, 'print the lab\'s addresses as export lines: eval "$(./lab env)"', docker=False)
    sql = verb("sql", cmd_sql, "query the lab's DuckDB warehouse, read-only")
    sql.add_argument("query", help='one SQL statement, e.g. "select * from prefect_history.flow_stats"')
    check = verb("check", cmd_check, "check your solution of an exercise against the running lab", docker=False)
    check.add_argument("exercise", help="the exercise's number, e.g. 07")
    check.add_argument("--file", type=Path, help="check this file instead of flows/mine/NN_*.py")
    verb("settings", cmd_settings, "print every setting with its default", docker=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["test"]:
        return run_tests(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        config = LabConfig.load()
        return args.func(args, config)
    except (LabError, SettingError) as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
