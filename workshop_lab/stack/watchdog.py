"""Keep the embedded lab's services running: restart one that crashed, with back-off.

    python -m workshop_lab.stack.watchdog        (`./lab up` starts it; `./lab down` stops it first)

What Docker's `restart: on-failure` does for the compose lab, this does for the embedded one.
It is the parent of every long-running service (it starts them with `Supervisor._spawn`, as
`up` used to), so it sees each one's exit code the moment it exits:

- A crashed service is started again after 1, 2, 4, 8, then 16 s (the delay doubles with each
  crash in a row, and drops back to 1 s once the service has stayed up for 60 s), with a banner
  in its log saying how it ended. After 5 crashes within 5 minutes the watchdog gives up on it:
  something is wrong that a restart does not fix (a port taken, a broken setting), and
  `./lab status` says so; `./lab up` starts it again.
- What it saw goes to `run/<service>.state.json` (restarts, last exit, when, given up), which
  `up` and `status` read. `up` asks it for something with `run/<service>.request`: "start" (a
  service `up` brings back) or "hold" (one that `up` is about to stop).
- Services that already run when it starts (an earlier watchdog was killed) are adopted and
  watched through psutil. It is not their parent, so their exit code is unknown, and the state
  file says so rather than guess.
- SIGTERM (`./lab down`, or `up` giving up) stops the watchdog alone: the services keep running
  until `down` stops them, so it never restarts something that is being stopped.

Why a small watchdog of our own rather than supervisord or circus: the lab already has what a
process manager needs, in one place: each service's start command, health check, process group
and the LAB_INSTANCE marker (services.py, supervisor.py). A process manager would repeat
services.py in its own config format, add a dependency to the lab's lock, and run its own
daemon and control socket beside the lab's pid files; `up`, `status`, `down` and the tests would
then have two sources of truth. This file adds only the restart policy.

It stays light (the idle lab's memory is a figure the README reports): it imports the
supervisor's modules and psutil, never Prefect or Dask, and wakes once a second (at once when
a child exits). Its resident memory is about 18 MB.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psutil

from workshop_lab.stack.services import Service
from workshop_lab.stack.settings import LabConfig
from workshop_lab.stack.supervisor import Supervisor, describe_exit, exit_label

# The back-off policy. Delays double with each crash in a row (from 1 s), capped at the last.
RESTART_DELAYS_SECONDS = (1, 2, 4, 8, 16)
# A service that stayed up this long was healthy: its next crash starts the back-off afresh.
STAYED_UP_SECONDS = 60
# This many crashes within the window: a restart does not help, stop trying.
GIVE_UP_AFTER_CRASHES = 5
GIVE_UP_WINDOW_SECONDS = 300
POLL_SECONDS = 1.0


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def log(message: str) -> None:
    print(f"{datetime.now().strftime('%H:%M:%S')} {message}", flush=True)


@dataclass
class Watched:
    """One long-running service: its process (ours, or adopted) and the record the state file holds."""

    service: Service
    record: dict
    child: subprocess.Popen | None = None  # started by this watchdog: its exit code is known
    adopted: psutil.Process | None = None  # already running when this watchdog started
    started_monotonic: float = 0.0
    restart_at: float | None = None  # monotonic time of the next restart, while backing off
    written: str = field(default="", repr=False)

    @property
    def running(self) -> bool:
        return self.child is not None or self.adopted is not None

    def ended(self) -> tuple[bool, int | None]:
        """(whether the process ended, its return code if known); reaps our own child."""
        if self.child is not None:
            code = self.child.poll()
            return code is not None, code
        try:
            ended = not self.adopted.is_running() or self.adopted.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            ended = True
        return ended, None


class Watchdog:
    def __init__(self, supervisor: Supervisor):
        self.supervisor = supervisor
        self.watched = {s.name: Watched(s, supervisor.read_state(s.name)) for s in supervisor.long_running}
        self.stopping = False
        self.me = psutil.Process()

    # --- the loop -------------------------------------------------------------------------
    def run(self) -> None:
        wake = self._wake_on_signals()
        log(f"watchdog {os.getpid()} watching {', '.join(self.watched)}")
        for watched in self.watched.values():
            proc = self.supervisor.process(watched.service.name)
            if proc is not None:
                self._adopt(watched, proc)
            else:
                self._fresh_start(watched)
        while not self.stopping:
            self._handle_requests()
            for watched in self.watched.values():
                self._check(watched)
            self._save()
            if not self._still_the_lab_watchdog():
                log("another watchdog took over (run/watchdog.pid names it): exiting")
                return
            select.select([wake], [], [], POLL_SECONDS)
            try:
                while os.read(wake, 512):
                    pass
            except BlockingIOError:
                pass
        log("stopping (the services keep running; ./lab down stops them)")

    def _wake_on_signals(self) -> int:
        """A pipe that a child's exit (SIGCHLD) or a stop signal makes readable: no waiting for the next poll."""
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        os.set_blocking(write_end, False)
        signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)

        def stop(signum, frame) -> None:
            self.stopping = True

        for stop_signal in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(stop_signal, stop)
        # A handler that does nothing: it exists so that the signal reaches the wake-up pipe.
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        return read_end

    def _still_the_lab_watchdog(self) -> bool:
        proc = self.supervisor.watchdog_process()
        return proc is None or proc.pid == self.me.pid

    # --- one service ------------------------------------------------------------------------
    def _check(self, watched: Watched) -> None:
        if watched.running:
            ended, code = watched.ended()
            if ended:
                self._on_exit(watched, code)
        elif watched.restart_at is not None and time.monotonic() >= watched.restart_at and not self.stopping:
            self._start(watched, restart=True)

    def _adopt(self, watched: Watched, proc: psutil.Process) -> None:
        watched.adopted = proc
        watched.started_monotonic = time.monotonic() - max(0.0, time.time() - proc.create_time())
        watched.record.update(pid=proc.pid, watched="adopted", next_restart_at=None)
        log(
            f"{watched.service.name}: adopted pid {proc.pid} (started before this watchdog: its exit code will be unknown)"
        )

    def _fresh_start(self, watched: Watched) -> None:
        """`up` asked for it: a new start, with no crashes counted against it."""
        watched.record.update(restarts=0, recent_crashes=[], crashes_in_a_row=0, given_up=False, on_hold=False)
        watched.restart_at = None
        if not watched.running:
            self._start(watched, restart=False)

    def _start(self, watched: Watched, restart: bool) -> None:
        name = watched.service.name
        if restart:
            watched.record["restarts"] = watched.record.get("restarts", 0) + 1
            with self.supervisor.logfile(name).open("a") as service_log:
                service_log.write(
                    f"\n===== restarted by the watchdog after it exited: {describe_exit(watched.record.get('last_exit', '?'))} "
                    f"at {watched.record.get('last_exit_at')} (restart {watched.record['restarts']}) =====\n"
                )
        watched.restart_at = None
        watched.record["next_restart_at"] = None
        try:
            watched.child = self.supervisor._spawn(watched.service)
        except OSError as exc:
            log(f"{name}: could not start ({exc})")
            self._on_exit(watched, None, failed_to_start=True)
            return
        watched.adopted = None
        watched.started_monotonic = time.monotonic()
        watched.record.update(pid=watched.child.pid, watched="child", started_at=now_iso())
        log(f"{name}: {'restarted' if restart else 'started'} as pid {watched.child.pid}")

    def _on_exit(self, watched: Watched, code: int | None, failed_to_start: bool = False) -> None:
        name, record = watched.service.name, watched.record
        stayed_up = time.monotonic() - watched.started_monotonic
        watched.child = watched.adopted = None
        record.update(pid=None, watched=None, last_exit=exit_label(code), last_exit_code=code, last_exit_at=now_iso())
        if record.get("on_hold"):
            log(f"{name}: exited ({describe_exit(record['last_exit'])}) while on hold: not restarting it")
            return
        if stayed_up >= STAYED_UP_SECONDS:
            record["crashes_in_a_row"] = 0
        record["crashes_in_a_row"] = record.get("crashes_in_a_row", 0) + 1
        window_start = datetime.now(UTC) - timedelta(seconds=GIVE_UP_WINDOW_SECONDS)
        recent = [t for t in record.get("recent_crashes", []) if datetime.fromisoformat(t) >= window_start]
        record["recent_crashes"] = [*recent, record["last_exit_at"]]
        how = "could not be started" if failed_to_start else describe_exit(record["last_exit"])
        if len(record["recent_crashes"]) >= GIVE_UP_AFTER_CRASHES:
            record["given_up"] = True
            log(
                f"{name}: {how} after {stayed_up:.0f}s; {len(record['recent_crashes'])} crashes within "
                f"{GIVE_UP_WINDOW_SECONDS // 60} minutes: giving up (./lab up starts it again)"
            )
            return
        delay = RESTART_DELAYS_SECONDS[min(record["crashes_in_a_row"], len(RESTART_DELAYS_SECONDS)) - 1]
        watched.restart_at = time.monotonic() + delay
        record["next_restart_at"] = (datetime.now(UTC) + timedelta(seconds=delay)).isoformat(timespec="seconds")
        log(f"{name}: {how} after {stayed_up:.0f}s up; restarting it in {delay}s")

    # --- requests from `up`, state for `status` ------------------------------------------------
    def _handle_requests(self) -> None:
        for name, watched in self.watched.items():
            request_file = self.supervisor.request_file(name)
            try:
                request = request_file.read_text().strip()
            except FileNotFoundError:
                continue
            if request == "start":
                log(f"{name}: ./lab up asks for it")
                self._fresh_start(watched)
            elif request == "hold":
                log(f"{name}: on hold (./lab up stops it)")
                watched.record["on_hold"] = True
                watched.restart_at = None
                watched.record["next_restart_at"] = None
            else:
                log(f"{name}: ignoring the unknown request {request!r}")
            self._save()  # before the request disappears: `up` reads the state once it has
            request_file.unlink(missing_ok=True)

    def _save(self) -> None:
        for name, watched in self.watched.items():
            text = repr(sorted(watched.record.items()))
            if text != watched.written:
                self.supervisor.write_state(name, {"service": name, **watched.record})
                watched.written = text


def main() -> None:
    supervisor = Supervisor(LabConfig.load())
    if supervisor.watchdog_process() is not None and supervisor.watchdog_process().pid != os.getpid():
        sys.exit(f"another watchdog runs already (pid {supervisor.watchdog_process().pid})")
    Watchdog(supervisor).run()


if __name__ == "__main__":
    main()
