"""A flow run's end, without waiting for its heartbeat thread's nap.

Prefect 3.9 sends a flow run's heartbeats from a thread that sleeps in steps of one second
(`time.sleep(1)` in a loop) and, when a sync flow run ends, joins that thread: so every sync flow
run, and every subflow run, ends up to a second later than its work, half a second on average.
On the lab's course flows that is often more than the flow's own overhead; in bench/dask_overhead.py
it showed as run times quantized to whole seconds.

This module replaces Prefect's `_send_heartbeats` context manager with the same thing, except that
the thread waits on its stop event (`Event.wait(interval)`) instead of napping: it wakes the moment
the run ends. Heartbeats are sent exactly as before (same interval, same events, same final-state
check). One difference: a heartbeat that fails to send is logged at WARNING (with the error; the
traceback at DEBUG), where Prefect logs it at DEBUG only, so that a run whose heartbeats do not reach
the server (and that the lab's automation will therefore mark CRASHED) says why in its log.
Applied by workshop_lab/prefect_speedups/__init__.py; `LAB_PREFECT_HEARTBEAT_WAIT=0` turns it off.
tests/test_speedup_guards.py checks that heartbeats are still sent, at the configured interval.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading

from workshop_lab.prefect_speedups import replace


def enabled() -> bool:
    return os.environ.get("LAB_PREFECT_HEARTBEAT_WAIT", "1") != "0"


def wait_for_stop(stop_event: threading.Event, seconds: float) -> bool:
    """The heartbeat thread's wait between two heartbeats: True once the run has ended.
    (A module attribute, so that a test can watch the interval without waiting for it.)"""
    return stop_event.wait(seconds)


def patch(module) -> None:
    minimum = module.MINIMUM_HEARTBEAT_INTERVAL

    @contextlib.contextmanager
    def _send_heartbeats(engine, join_on_exit: bool = True):
        heartbeat_seconds = engine.heartbeat_seconds
        if heartbeat_seconds is None:
            yield
            return
        heartbeat_seconds = max(heartbeat_seconds, minimum)
        resource, related = engine._build_heartbeat_event_template()
        stop_event = threading.Event()

        def heartbeat_loop() -> None:
            while not stop_event.is_set():
                if engine.flow_run and engine.flow_run.state and engine.flow_run.state.is_final():
                    engine.logger.debug("Flow run in terminal state, stopping heartbeat")
                    return
                try:
                    engine._emit_flow_run_heartbeat(resource, related)
                except Exception as error:
                    engine.logger.warning("Failed to emit flow run heartbeat: %r", error)
                    engine.logger.debug("Failed to emit heartbeat", exc_info=True)
                if wait_for_stop(stop_event, heartbeat_seconds):  # Prefect's own loop sleeps in 1 s steps
                    return

        # As Prefect does: the thread sees the caller's settings context.
        thread = threading.Thread(target=contextvars.copy_context().run, args=(heartbeat_loop,), daemon=True)
        thread.start()
        engine.logger.debug("Started flow run heartbeat context")
        try:
            yield
        finally:
            stop_event.set()
            if join_on_exit:
                thread.join(timeout=2)
            engine.logger.debug("Stopped flow run heartbeat context")

    replace(module, "_send_heartbeats", _send_heartbeats)
