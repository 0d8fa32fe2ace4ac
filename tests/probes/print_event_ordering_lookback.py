"""Prints how far back the Prefect server's event ordering looks for an event's leader, in seconds,
for its in-memory and its database implementation (the lab's speed-up sets both to 30 s; stock
Prefect has 15 minutes)."""

# memory first, then db: the order the test has always imported them in.
import prefect.server.events.ordering.memory as m

# isort: split
import prefect.server.events.ordering.db as d

print(m.PRECEDING_EVENT_LOOKBACK.total_seconds(), d.PRECEDING_EVENT_LOOKBACK.total_seconds())
