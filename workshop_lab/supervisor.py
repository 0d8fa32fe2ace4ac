"""Start, watch and stop the embedded lab's processes.

Every service runs in its own process group with its output in `<LAB_HOME>/logs/<service>.log`
and its pid in `<LAB_HOME>/run/<service>.pid`. Every process also carries the environment
marker `LAB_INSTANCE=<LAB_HOME>`, inherited by its children (flow runs, Dask worker processes),
so `down` can find and stop anything the lab started, even a child that left its group.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import psutil

from workshop_lab.health import Unhealthy
from workshop_lab.services import Service, embedded_services, lab_environment
from workshop_lab.settings import LabConfig

STOP_GRACE_SECONDS = 10.0
POLL_SECONDS = 0.2


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

    def _make_dirs(self) -> None:
        for path in (self.config.prefect_home, self.config.results_dir, self.config.warehouse_path.parent,
                     self.config.logs_dir, self.config.run_dir, self.config.home / "dask"):
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
                if proc.pid != os.getpid() and proc.environ().get("LAB_INSTANCE") == marker and proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc)
            except psutil.Error:
                continue
        return found

    def _spawn(self, service: Service) -> subprocess.Popen:
        env = {**os.environ, **lab_environment(self.config), **service.extra_env}
        log = self.logfile(service.name).open("a")
        log.write(f"\n===== {service.name} starting at {datetime.now(timezone.utc).isoformat(timespec='seconds')} =====\n")
        log.flush()
        proc = subprocess.Popen(
            service.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=self.config.home, start_new_session=True,
            preexec_fn=(lambda: os.nice(service.nice)) if service.nice else None,
        )
        log.close()
        self.pidfile(service.name).write_text(f"{proc.pid} {psutil.Process(proc.pid).create_time()}\n")
        return proc

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
        started_at = time.monotonic()
        running = {s.name for s in self.services if not s.one_shot and self.process(s.name)}
        long_running = [s for s in self.services if not s.one_shot]
        if running and len(running) == len(long_running):
            say("The lab is already running; checking its health.")
        to_start = [s for s in long_running if s.name not in running]
        if to_start:
            # Setup runs whenever the server (re)starts; with the server up, it is already done.
            if "prefect-server" not in running:
                to_start.insert(0, self.by_name["setup"])
            self._check_ports(to_start)
            names = ", ".join(s.name for s in to_start)
            say(f"Starting {names} (logs: {self.config.logs_dir})")
        procs = {s.name: self._spawn(s) for s in to_start}
        try:
            timings = self._wait_healthy(procs, started_at, say)
        except BaseException:
            if procs:
                say("Stopping what this `up` started.")
                self.stop([name for name in procs])
            raise
        timings = {name: seconds for name, seconds in timings.items() if name in procs or name in running}
        timings["all"] = round(time.monotonic() - started_at, 2)
        (self.config.run_dir / "up.json").write_text(json.dumps({"seconds_to_healthy": timings}, indent=2))
        return timings

    def _wait_healthy(self, procs: dict[str, subprocess.Popen], started_at: float, say: Callable[[str], None]) -> dict[str, float]:
        pending = [s for s in self.services if s.name in procs or not s.one_shot]
        # A one-shot step this `up` did not start ran when the server last started.
        done: dict[str, float] = {s.name: 0.0 for s in self.services if s.one_shot and s.name not in procs}
        last_problem: dict[str, str] = {}
        while pending:
            for service in list(pending):
                proc = procs.get(service.name)
                elapsed = time.monotonic() - started_at
                if proc is not None and proc.poll() is not None and not (service.one_shot and proc.returncode == 0):
                    raise LabError(
                        f"{service.name} exited with code {proc.returncode} while starting. "
                        f"Last lines of {self.logfile(service.name)}:\n{log_tail(self.logfile(service.name))}"
                    )
                if any(dep not in done for dep in service.after):
                    continue
                try:
                    if service.one_shot:
                        if proc is not None and proc.poll() is None:
                            raise Unhealthy("still running")
                    else:
                        service.check()
                except Unhealthy as exc:
                    last_problem[service.name] = str(exc)
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

    # --- down ---------------------------------------------------------------------------
    def stop(self, names: list[str] | None = None) -> list[str]:
        """Stop services (all by default) in reverse dependency order, then any straggler."""
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
        states = []
        for service in self.services:
            if service.one_shot:
                continue
            proc = self.process(service.name)
            healthy, detail = False, "not running"
            if proc is not None:
                try:
                    detail, healthy = service.check(), True
                except Unhealthy as exc:
                    detail = str(exc)
            states.append(ServiceState(service.name, proc is not None, proc.pid if proc else None, healthy, detail, service.url))
        return states
