"""Probe for tests/test_speedup_guards.py: the flow run heartbeats that `_send_heartbeats` (the lab's
or, with LAB_PREFECT_HEARTBEAT_WAIT=0, Prefect's) sends for a flow run engine, caught by Prefect's
own test events client (AssertingEventsClient) instead of a server.

The lab's heartbeat thread waits between heartbeats in `heartbeat_wait.wait_for_stop`; this probe
replaces it by one that records the interval asked for and waits 20 ms instead, so that
heartbeats at the configured 45 s arrive every 20 ms. Prints what it saw as JSON."""

import json
import logging
import time
import uuid

import prefect.flow_engine as fe
from prefect import flow
from prefect.client.schemas.objects import FlowRun
from prefect.events.clients import AssertingEventsClient
from prefect.events.worker import EventsWorker
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect.states import Completed, Running

from workshop_lab.prefect_speedups import heartbeat_wait

events_worker = EventsWorker.instance(AssertingEventsClient)
EventsWorker.instance = lambda *_: events_worker  # as Prefect's `asserting_events_worker` fixture does

asked_intervals: list[float] = []
real_wait = heartbeat_wait.wait_for_stop


def fast_wait(stop_event, seconds):
    asked_intervals.append(seconds)
    return stop_event.wait(0.02)


@flow
def beating() -> None:
    """The flow whose run the engine stands for (it is never called)."""


engine = fe.FlowRunEngine(flow=beating)
engine.flow_run = FlowRun(id=uuid.uuid4(), flow_id=uuid.uuid4(), name="probe-run", state=Running())


def heartbeats() -> list:
    events_worker.wait_until_empty()
    client = events_worker._client  # its `events` list exists once it has been entered (first event)
    sent = client.pop_events() if hasattr(client, "events") else []
    return [e for e in sent if e.event == "prefect.flow-run.heartbeat"]


def beat_for(seconds: float) -> float:
    """Hold the heartbeat context for `seconds`; returns how long leaving it took."""
    with fe._send_heartbeats(engine):
        time.sleep(seconds)
        leaving = time.monotonic()
    return time.monotonic() - leaving


seen: dict = {"patched": getattr(fe._send_heartbeats, "_lab_speedup", False)}

# 1. Fast clock, configured interval (the environment's PREFECT_FLOWS_HEARTBEAT_FREQUENCY).
heartbeats()
heartbeat_wait.wait_for_stop = fast_wait
beat_for(0.5)
sent = heartbeats()
seen["configured"] = {
    "count": len(sent),
    "intervals": sorted(set(asked_intervals)),
    "names": sorted({e.event for e in sent}),
    "resources": sorted({e.resource.id for e in sent}),
}
seen["flow_run_resource"] = f"prefect.flow-run.{engine.flow_run.id}"
seen["first_event"] = sent[0].model_dump(mode="json", include={"event", "resource"}) if sent else None

# 2. Another interval, set the way a flow's settings would be.
asked_intervals.clear()
with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 60}):
    beat_for(0.2)
seen["temporary_60"] = {"count": len(heartbeats()), "intervals": sorted(set(asked_intervals))}

# 3. A heartbeat that fails to send: what the engine's logger gets.
records: list[logging.LogRecord] = []
handler = logging.Handler()
handler.emit = records.append
engine.logger.addHandler(handler)
engine.logger.setLevel(logging.DEBUG)


def failing_emit(*args, **kwargs):
    raise ConnectionError("server unreachable (simulated)")


engine._emit_flow_run_heartbeat = failing_emit
beat_for(0.1)
del engine._emit_flow_run_heartbeat
engine.logger.removeHandler(handler)
seen["failure_logs"] = sorted(
    {(r.levelname, r.getMessage()) for r in records if "heartbeat" in r.getMessage() and "Fail" in r.getMessage()}
)

# 4. A run in a final state sends none.
engine.flow_run.state = Completed()
beat_for(0.1)
seen["after_final_state"] = len(heartbeats())
engine.flow_run.state = Running()

# 5. The real wait: one heartbeat at once, then leaving the context does not wait for the interval.
heartbeat_wait.wait_for_stop = real_wait
seen["real_wait_leave_seconds"] = beat_for(0.3)
seen["real_wait_count"] = len(heartbeats())
events_worker.drain()
print(json.dumps(seen))
