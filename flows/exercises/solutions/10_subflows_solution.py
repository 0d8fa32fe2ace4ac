"""
Solution to exercise 10 · Flow of flows: fan out to every city at once.

Run it (the lab's worker runs the seven city-weather children):
    .venv/bin/python flows/exercises/solutions/10_subflows_solution.py

Answers
- 3. The graph shows one box per child deployment run and one for the subflow; a child's run page
  names its parent flow run at the top ("Parent flow run"), linked.
- 4. All seven `city-weather` runs and the `rank-cities` subflow point at task runs of the parent;
  only the city-weather runs have a deployment_id (the subflow ran inside the parent's process).
- 5. With `as_subflow=False` the run has no parent_task_run_id: it is an independent run that merely
  happened to be started from here (no box in the parent's graph, no link on its page). Use it
  for work that must outlive or stand apart from the caller, e.g. kicking off a nightly job.
"""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import flow
from prefect.artifacts import create_table_artifact
from prefect.deployments import arun_deployment

CITIES = ["Berlin", "Lagos", "Lima", "Mumbai", "Oslo", "Sydney", "Toronto"]
CHILD = "city-weather/city-weather"
# Each child is a few seconds of work after the worker picks it up (it polls every 2 s).
CHILD_TIMEOUT_SECONDS = 180


@flow(name="rank-cities")
def rank_cities(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Subflow: rank cities from warmest to coldest and publish the ranking."""
    ranking = [
        {"rank": i, **s} for i, s in enumerate(sorted(summaries, key=lambda s: s["mean_c"], reverse=True), start=1)
    ]
    create_table_artifact(
        key="weather-ranking", table=ranking, description="Cities by mean temperature, warmest first."
    )
    return ranking


@flow(name="weather-ranking", log_prints=True)
async def weather_ranking(cities: list[str] = CITIES) -> list[dict[str, Any]]:
    """Run city-weather for every city at once, then rank the cities in a subflow."""
    children = await asyncio.gather(
        *(arun_deployment(CHILD, parameters={"city": c}, timeout=CHILD_TIMEOUT_SECONDS) for c in cities)
    )
    unfinished = [c.name for c in children if not (c.state and c.state.is_completed())]
    if unfinished:
        raise RuntimeError(f"children that did not complete in {CHILD_TIMEOUT_SECONDS}s: {unfinished}")
    summaries = [await child.state.result() for child in children]
    ranking = rank_cities(summaries)
    print(" > ".join(f"{r['city']} {r['mean_c']}°C" for r in ranking))
    return ranking


if __name__ == "__main__":
    asyncio.run(weather_ranking())
