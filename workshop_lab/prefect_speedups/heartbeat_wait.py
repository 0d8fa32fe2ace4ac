"""A flow run's end, without waiting for its heartbeat thread's nap.

Prefect 3.9 sends a flow run's heartbeats from a thread that sleeps in steps of one second
(`time.sleep(1)` in a loop) and, when a sync flow run ends, joins that thread: so every sync flow
run, and every subflow run, ends up to a second later than its work, half a second on average.
On the lab's course flows that is often more than the flow's own overhead; in bench/dask_overhead.py
it showed as run times quantized to whole seconds.

This module replaces Prefect's `_send_heartbeats` context manager with the same thing, except that
the thread waits on its stop event (`Event.wait(interval)`) instead of napping: it wakes the moment
the run ends. Heartbeats are sent exactly as before (same interval, same events, same final-state
check). Applied by workshop_lab/prefect_speedups/__init__.py; `LAB_PREFECT_HEARTBEAT_WAIT=0` turns it off.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading

from workshop_lab.prefect_speedups import replace


def enabled() -> bool:
    return os.environ.get("LAB_PREFECT_HEARTBEAT_WAIT", "1") != "0"


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
                except Exception:
                    engine.logger.debug("Failed to emit heartbeat", exc_info=True)
                stop_event.wait(heartbeat_seconds)  # Prefect's own loop sleeps in 1 s steps here

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
