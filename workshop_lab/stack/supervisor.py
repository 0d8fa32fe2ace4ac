"""Start, watch and stop the embedded lab's processes.

Every service runs in its own process group with its output in `<LAB_HOME>/logs/<service>.log`
and its pid in `<LAB_HOME>/run/<service>.pid`. Every process also carries the environment
marker `LAB_INSTANCE=<LAB_HOME>`, inherited by its children (flow runs, Dask worker processes),
so `down` can find and stop anything the lab started, even a child that left its group.

`up` starts the one-shot setup itself and leaves the long-running services to the watchdog
(workshop_lab/stack/watchdog.py): their parent, so it sees each exit and restarts what crashed. It
records what it saw in `run/<service>.state.json`; `up` and `status` read those files, and ask
the watchdog for something by writing `run/<service>.request` (the watchdog is their only reader,
the state files' only writer).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

from workshop_lab.stack.health import Unhealthy
from workshop_lab.stack.services import Service, embedded_services, lab_environment
from workshop_lab.stack.settings import LabConfig

STOP_GRACE_SECONDS = 10.0
POLL_SECONDS = 0.2
WATCHDOG = "watchdog"
# How long `up` waits for the watchdog to take a request before it acts without it.
WATCHDOG_ANSWER_SECONDS = 5.0
# What an adopted service's end looks like: the watchdog is not its parent, so no exit code.
UNKNOWN_EXIT = "unknown"


class LabError(RuntimeError):
    """Something the learner can act on: the message says what happened and what to do."""


@dataclass
class ServiceState:
    name: str
    running: bool
    pid: int | None
    healthy: bool
    detail: str
    url: str
    # What the watchdog (embedded) or Docker's restart policy did: restarts since the service was
    # last started by `up`, how it last ended ("1", "SIGKILL", "unknown") and when.
    restarts: int = 0
    last_exit: str | None = None
    last_exit_at: str | None = None
    # The watchdog stopped restarting it (too many crashes in a row); `up` starts it again.
    given_up: bool = False
    crashes: int = 0


def exit_label(returncode: int | None) -> str:
    """A process's end as the state files and `status` show it: the exit code, a signal's name, or unknown."""
    if returncode is None:
        return UNKNOWN_EXIT
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return str(returncode)


def describe_exit(label: str) -> str:
    """`exit_label`'s text in a sentence: "exit code 1", "killed by SIGKILL"."""
    if label == UNKNOWN_EXIT:
        return "exit code unknown (started before this watchdog, which adopted it: only a parent sees the exit code)"
    return f"killed by {label}" if label.startswith("SIG") or label.startswith("signal") else f"exit code {label}"


def log_tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return f"(no log at {path})"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def port_owner(port: int) -> str:
    """Best effort: which process listens on a port."""
    try:
        for conn in psutil.net_connections(kind="inet"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                proc = psutil.Process(conn.pid)
                return f"pid {conn.pid} ({' '.join(proc.cmdline()[:4])})"
    except (psutil.Error, OSError):
        pass
    return "another program"


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers do: connections of a stopped server lingering in TIME_WAIT don't count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class Supervisor:
    def __init__(self, config: LabConfig):
        self.config = config
        self.services = embedded_services(config)
        self.by_name = {s.name: s for s in self.services}

    # --- files --------------------------------------------------------------------------
    def pidfile(self, name: str) -> Path:
        return self.config.run_dir / f"{name}.pid"

    def logfile(self, name: str) -> Path:
        return self.config.logs_dir / f"{name}.log"

    def state_file(self, name: str) -> Path:
        return self.config.run_dir / f"{name}.state.json"

    def request_file(self, name: str) -> Path:
        return self.config.run_dir / f"{name}.request"

    def read_state(self, name: str) -> dict:
        """What the watchdog last recorded about a service (empty before it recorded anything)."""
        try:
            return json.loads(self.state_file(name).read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def write_state(self, name: str, state: dict) -> None:
        """Written whole and renamed into place: a reader never sees half a file."""
        partial = self.state_file(name).with_suffix(".partial")
        partial.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(partial, self.state_file(name))

    @property
    def long_running(self) -> list[Service]:
        return [s for s in self.services if not s.one_shot]

    def _make_dirs(self) -> None:
        for path in (
            self.config.prefect_home,
            self.config.results_dir,
            self.config.warehouse_path.parent,
            self.config.logs_dir,
            self.config.run_dir,
            self.config.home / "dask",
        ):
            path.mkdir(parents=True, exist_ok=True)

    # --- processes ----------------------------------------------------------------------
    def process(self, name: str) -> psutil.Process | None:
        """The running process of a service, if its pid file names a live one we started."""
        try:
            pid_text, started = self.pidfile(name).read_text().split()
            proc = psutil.Process(int(pid_text))
            if abs(proc.create_time() - float(started)) > 1 or proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except (FileNotFoundError, ValueError, psutil.Error):
            return None

    def lab_processes(self) -> list[psutil.Process]:
        """Every live process carrying this lab's marker, whoever its parent is."""
        marker = str(self.config.home)
        found = []
        for proc in psutil.process_iter():
            try:
                if (
                    proc.pid != os.getpid()
                    and proc.environ().get("LAB_INSTANCE") == marker
                    and proc.status() != psutil.STATUS_ZOMBIE
                ):
                    found.append(proc)
            except psutil.Error:
                continue
        return found

    def _spawn(self, service: Service) -> subprocess.Popen:
        env = {**os.environ, **lab_environment(self.config), **service.extra_env}
        log = self.logfile(service.name).open("a")
        log.write(f"\n===== {service.name} starting at {datetime.now(UTC).isoformat(timespec='seconds')} =====\n")
        log.flush()
        proc = subprocess.Popen(
            service.command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=self.config.home,
            start_new_session=True,
            preexec_fn=(lambda: os.nice(service.nice)) if service.nice else None,
        )
        log.close()
        self.pidfile(service.name).write_text(f"{proc.pid} {psutil.Process(proc.pid).create_time()}\n")
        return proc

    # --- the watchdog -------------------------------------------------------------------
    def watchdog_service(self) -> Service:
        # Nice 0: the services it starts inherit its priority before taking their own `nice`.
        return Service(
            name=WATCHDOG,
            command=[sys.executable, "-m", "workshop_lab.stack.watchdog"],
            check=lambda: "restarts crashed services",
            nice=0,
        )

    def watchdog_process(self) -> psutil.Process | None:
        return self.process(WATCHDOG)

    def ask_watchdog(self, name: str, request: str) -> None:
        """Leave a request ("start" or "hold") for the watchdog: it reads them every second."""
        partial = self.request_file(name).with_suffix(".partial")
        partial.write_text(request + "\n")
        os.replace(partial, self.request_file(name))

    def stop_watchdog(self) -> bool:
        """Stop the watchdog (it leaves the services running), so that nothing is restarted behind our back."""
        watchdog = self.watchdog_process()
        if watchdog is not None:
            # Not _stop_group: that signals a process's children too, and the services are its children.
            for stop_signal in (signal.SIGTERM, signal.SIGKILL):
                try:
                    watchdog.send_signal(stop_signal)
                    watchdog.wait(timeout=5)
                    break
                except psutil.TimeoutExpired:
                    continue
                except psutil.Error:
                    break
        self.pidfile(WATCHDOG).unlink(missing_ok=True)
        return watchdog is not None

    def _check_ports(self, services: Iterable[Service]) -> None:
        host = self.config["LAB_BIND_ADDRESS"]
        for service in services:
            for setting, port in service.ports:
                if not port_is_free(host, port):
                    raise LabError(
                        f"Port {port} ({service.name}) is already in use on {host} by {port_owner(port)}.\n"
                        f"Stop that program, or move the lab to a free port: {setting}={port + 1} ./lab up "
                        f"(or put {setting}=... in .env)."
                    )

    # --- up -----------------------------------------------------------------------------
    def up(self, say: Callable[[str], None] = print) -> dict[str, float]:
        """Start what is not running, wait until everything is healthy; returns seconds to each."""
        self._make_dirs()
        started_at, started_wall = time.monotonic(), time.time()
        running = {s.name for s in self.long_running if self.process(s.name)}
        watchdog_was_running = self.watchdog_process() is not None
        if running and len(running) == len(self.long_running):
            say("The lab is already running; checking its health.")
        to_start = [s for s in self.long_running if s.name not in running]
        one_shots = []
        if to_start:
            # Setup runs whenever the server (re)starts; with the server up, it is already done.
            if "prefect-server" not in running:
                one_shots.append(self.by_name["setup"])
            self._check_ports(to_start)
            names = ", ".join(s.name for s in [*one_shots, *to_start])
            say(f"Starting {names} (logs: {self.config.logs_dir})")
        if not watchdog_was_running and running:
            say(f"Starting the watchdog: it adopts {', '.join(sorted(running))} (their exit codes stay unknown to it).")
        starting = {s.name for s in to_start}
        procs = {s.name: self._spawn(s) for s in one_shots}
        try:
            if watchdog_was_running:
                for service in to_start:
                    self.ask_watchdog(service.name, "start")
            else:
                # A new watchdog adopts what runs and starts everything else.
                self._spawn(self.watchdog_service())
            timings = self._wait_healthy(procs, starting, started_at, started_wall, say)
        except BaseException:
            if procs or starting or not watchdog_was_running:
                say("Stopping what this `up` started.")
                if watchdog_was_running:
                    self._hold(starting)
                else:
                    self.stop_watchdog()
                self.stop([*procs, *starting])
            raise
        timings = {
            name: seconds for name, seconds in timings.items() if name in procs or name in starting or name in running
        }
        timings["all"] = round(time.monotonic() - started_at, 2)
        (self.config.run_dir / "up.json").write_text(json.dumps({"seconds_to_healthy": timings}, indent=2))
        return timings

    def _hold(self, names: Iterable[str]) -> None:
        """Ask the running watchdog not to restart these (`up` is about to stop them); wait until it agreed."""
        names = list(names)
        for name in names:
            self.ask_watchdog(name, "hold")
        deadline = time.monotonic() + WATCHDOG_ANSWER_SECONDS
        while any(self.request_file(n).exists() for n in names) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        if any(self.request_file(n).exists() for n in names):
            self.stop_watchdog()  # it does not answer: it must not restart what we stop

    def _exited_since(self, name: str, since: float) -> str | None:
        """How the service last ended, if the watchdog saw it end after `since` (epoch seconds)."""
        state = self.read_state(name)
        ended = state.get("last_exit_at")
        if ended and datetime.fromisoformat(ended).timestamp() >= since:
            return state.get("last_exit") or UNKNOWN_EXIT
        return None

    def _wait_healthy(
        self,
        procs: dict[str, subprocess.Popen],
        starting: set[str],
        started_at: float,
        started_wall: float,
        say: Callable[[str], None],
    ) -> dict[str, float]:
        pending = [s for s in self.services if s.name in procs or not s.one_shot]
        # A one-shot step this `up` did not start ran when the server last started.
        done: dict[str, float] = {s.name: 0.0 for s in self.services if s.one_shot and s.name not in procs}
        while pending:
            if self.watchdog_process() is None:
                raise LabError(
                    f"The watchdog exited while the lab was starting. Last lines of {self.logfile(WATCHDOG)}:\n"
                    f"{log_tail(self.logfile(WATCHDOG))}"
                )
            for service in list(pending):
                proc = procs.get(service.name)
                elapsed = time.monotonic() - started_at
                if proc is not None and proc.poll() is not None and not (service.one_shot and proc.returncode == 0):
                    self._fail_start(service.name, exit_label(proc.returncode))
                if service.name in starting:
                    ended = self._exited_since(service.name, started_wall)
                    if ended is not None:
                        self._fail_start(service.name, ended)
                if any(dep not in done for dep in service.after):
                    continue
                try:
                    if service.one_shot:
                        if proc is not None and proc.poll() is None:
                            raise Unhealthy("still running")
                    else:
                        service.check()
                except Unhealthy as exc:
                    if elapsed > service.start_timeout:
                        raise LabError(
                            f"{service.name} did not become healthy in {service.start_timeout:.0f}s ({exc}). "
                            f"Last lines of {self.logfile(service.name)}:\n{log_tail(self.logfile(service.name))}"
                        ) from None
                    continue
                done[service.name] = round(elapsed, 2)
                pending.remove(service)
                say(f"  {service.name:<15} ready after {elapsed:5.1f}s")
            if pending:
                time.sleep(POLL_SECONDS)
        return done

    def _fail_start(self, name: str, ended: str) -> None:
        how = f"was {describe_exit(ended)}" if ended.startswith("SIG") else f"exited with code {ended}"
        raise LabError(
            f"{name} {how} while starting. Last lines of {self.logfile(name)}:\n{log_tail(self.logfile(name))}"
        )

    # --- chaos --------------------------------------------------------------------------
    def kill(self, name: str) -> list[int]:
        """SIGKILL a service's process and all its descendants, as a crash (or a container's death) would."""
        if name not in {s.name for s in self.long_running}:
            raise LabError(
                f"No long-running service named {name!r}. Services: {', '.join(s.name for s in self.long_running)}"
            )
        proc = self.process(name)
        if proc is None:
            raise LabError(
                f"{name} is not running, so there is nothing to kill (./lab status shows what runs; ./lab up starts it)."
            )
        try:
            victims = [proc, *proc.children(recursive=True)]
        except psutil.Error:
            victims = [proc]
        try:
            group = os.getpgid(proc.pid)
        except ProcessLookupError:
            group = None
        for victim in victims:  # the parent first: a nanny or a worker must not replace a killed child
            try:
                victim.kill()
            except psutil.Error:
                pass
        if group is not None and group != os.getpgid(0):
            try:
                os.killpg(group, signal.SIGKILL)  # and any child that its parent's death already orphaned
            except (ProcessLookupError, PermissionError):
                pass
        psutil.wait_procs(victims, timeout=5)
        return [v.pid for v in victims]

    # --- down ---------------------------------------------------------------------------
    def stop(self, names: list[str] | None = None) -> list[str]:
        """Stop services (all by default: the watchdog first, so it restarts nothing) in reverse
        dependency order, then any straggler."""
        if names is None:
            self.stop_watchdog()
        order = [s.name for s in reversed(self.services)]
        stopped = []
        for name in order:
            if names is not None and name not in names:
                continue
            proc = self.process(name)
            if proc is not None:
                self._stop_group(proc, self.by_name[name].stop_signal)
                stopped.append(name)
            self.pidfile(name).unlink(missing_ok=True)
            if names is None:  # the next `up` starts afresh: no restarts, no request left over
                self.state_file(name).unlink(missing_ok=True)
                self.request_file(name).unlink(missing_ok=True)
        if names is None:
            stragglers = self.lab_processes()
            for proc in stragglers:
                self._stop_group(proc)
        return stopped

    @staticmethod
    def _stop_group(proc: psutil.Process, first: int = signal.SIGTERM) -> None:
        """Signal the process's group (SIGTERM unless told), then SIGKILL whatever is left after the grace period."""
        try:
            pgid = os.getpgid(proc.pid)
        except ProcessLookupError:
            return
        members = [proc]
        try:
            members += proc.children(recursive=True)
        except psutil.Error:
            pass
        for sig in (first, signal.SIGKILL):
            try:
                if pgid != os.getpgid(0):
                    os.killpg(pgid, sig)
                else:
                    proc.send_signal(sig)
            except (ProcessLookupError, PermissionError):
                pass
            for member in members:
                try:
                    member.send_signal(sig)
                except psutil.Error:
                    pass
            _, alive = psutil.wait_procs(members, timeout=STOP_GRACE_SECONDS if sig != signal.SIGKILL else 5)
            if not alive:
                return

    # --- status -------------------------------------------------------------------------
    def status(self) -> list[ServiceState]:
        """Each long-running service's health and what the watchdog did to it, then the watchdog itself."""
        states = []
        for service in self.long_running:
            proc = self.process(service.name)
            record = self.read_state(service.name)
            healthy, detail = False, "not running"
            if proc is not None:
                try:
                    detail, healthy = service.check(), True
                except Unhealthy as exc:
                    detail = str(exc)
            elif record.get("next_restart_at"):
                detail = f"crashed; the watchdog restarts it at {record['next_restart_at'][11:19]} UTC"
            states.append(
                ServiceState(
                    service.name,
                    proc is not None,
                    proc.pid if proc else None,
                    healthy,
                    detail,
                    service.url,
                    restarts=record.get("restarts", 0),
                    last_exit=record.get("last_exit"),
                    last_exit_at=record.get("last_exit_at"),
                    given_up=bool(record.get("given_up")) and proc is None,
                    crashes=len(record.get("recent_crashes", [])),
                )
            )
        watchdog = self.watchdog_process()
        states.append(
            ServiceState(
                WATCHDOG,
                watchdog is not None,
                watchdog.pid if watchdog else None,
                watchdog is not None,
                "restarts a service that crashes"
                if watchdog
                else "not running: a crashed service stays down (./lab up starts it)",
                "",
            )
        )
        return states
