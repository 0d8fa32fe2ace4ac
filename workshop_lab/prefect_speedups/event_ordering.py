"""A run that crashed across a server restart is heard in half a minute, not fifteen.

Prefect's server processes events in causal order: a flow run's state event names the event it
follows (its previous state's), and an automation sees it only once it has seen that one. The
events seen are kept in the server's memory (`CausalOrdering._seen_events` in
prefect/server/events/ordering/db.py), so a restarted server has seen none of them. A run that was
RUNNING when the lab stopped is marked CRASHED when it starts again (setup's automation
`crashed-when-heartbeats-stop`), and its Crashed event follows a Running event the new server never
saw: Prefect holds it for PRECEDING_EVENT_LOOKBACK, 15 minutes, before it evaluates it anyway. For
those 15 minutes the inbox hears nothing and the rerun automation does not fire.

The lab's server is one process with its in-memory message bus: an event's predecessor arrives
within milliseconds of it, or was lost with a restart. This lowers the wait to 30 s (the server's
periodic sweep then evaluates the held event within 5 s more). Everything else about ordering is
Prefect's. Installed by workshop_lab/prefect_speedups/__init__.py when the server loads the in-memory
ordering (and its database twin, ordering/db.py, should a lab switch to it);
`LAB_PREFECT_EVENT_ORDERING=0` leaves Prefect's 15 minutes.
"""

from __future__ import annotations

import os
from datetime import timedelta

from workshop_lab.prefect_speedups import replace

LOOKBACK_SECONDS = 30


class _Lookback(timedelta):
    """A timedelta that can carry the lab's patch mark."""


def enabled() -> bool:
    return os.environ.get("LAB_PREFECT_EVENT_ORDERING", "1") != "0"


def patch(module) -> None:
    if not isinstance(module.PRECEDING_EVENT_LOOKBACK, timedelta):
        raise TypeError(f"PRECEDING_EVENT_LOOKBACK is {module.PRECEDING_EVENT_LOOKBACK!r}, not a timedelta")
    replace(module, "PRECEDING_EVENT_LOOKBACK", _Lookback(seconds=LOOKBACK_SECONDS))
