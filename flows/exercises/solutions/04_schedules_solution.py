"""
Solution to exercise 04 · Schedules: one deployment, two cities, two clocks.

The deployment entry for flows/prefect.yaml (then `./lab deploy`):

    - name: weather-watch
      entrypoint: exercises/solutions/04_schedules_solution.py:weather_watch
      parameters: {}
      enforce_parameter_schema: true
      work_pool: *workshop_pool
      schedules:
        - interval: 120
          parameters: {city: Oslo}
          active: false
        - cron: "0,30 * * * *"
          timezone: Africa/Lagos
          parameters: {city: Lagos}
          active: false

The same two schedules as Python, `SCHEDULES` below: `./lab check 04` deploys them to a deployment
of its own and reads them back from the API, then resumes and pauses Oslo's with `set_schedule_active`.

Run it:
    .venv/bin/python flows/exercises/solutions/04_schedules_solution.py                # one run, now
    .venv/bin/python flows/exercises/solutions/04_schedules_solution.py resume Oslo    # step 3
    .venv/bin/python flows/exercises/solutions/04_schedules_solution.py pause Oslo
    .venv/bin/python flows/exercises/solutions/04_schedules_solution.py delays         # step 4

Trap found while writing this (Prefect 3.9.1): `PATCH .../schedules/ID {"active": false}`, which is
what a bare `update_deployment_schedule(..., active=...)` sends, also wipes that schedule's
`parameters`. Always send the parameters with it (see set_schedule_active).

Answer to step 3: pausing a schedule deletes the runs it had scheduled but that have not started;
runs already completed stay in the history. Resuming lets the scheduler create new ones.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any, Literal

import httpx
from prefect import flow, get_client, task
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
from prefect.schedules import Cron, Interval
from pydantic import Field

UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")
DEPLOYMENT = "weather-watch/weather-watch"
City = Literal["Berlin", "Lagos", "Lima", "Mumbai", "Oslo", "Sydney", "Toronto"]

# The prefect.yaml entry's schedules, as Python: both shipped paused.
SCHEDULES = [
    Interval(120, parameters={"city": "Oslo"}, active=False),
    Cron("0,30 * * * *", timezone="Africa/Lagos", parameters={"city": "Lagos"}, active=False),
]


# Why these numbers: a scheduled run has nobody watching it; 3 retries 2 s apart ride out a blip,
# and a run that still fails is simply tried again at the next slot.
@task(retries=3, retry_delay_seconds=2)
def fetch_weather(city: City, hours: int) -> list[dict[str, Any]]:
    """Fetch hourly weather readings for one city."""
    response = httpx.get(f"{UPSTREAM_URL}/weather", params={"city": city, "hours": hours}, timeout=10)
    response.raise_for_status()
    return response.json()["records"]


@flow(name="weather-watch", log_prints=True)
def weather_watch(city: City = "Oslo", hours: Annotated[int, Field(ge=1, le=744)] = 6) -> dict[str, Any]:
    """Log a city's warmest hour among its last readings."""
    readings = [r for r in fetch_weather(city, hours) if isinstance(r.get("temperature_c"), (int, float))]
    warmest = max(readings, key=lambda r: r["temperature_c"])
    print(f"{city}: warmest of the last {hours} hours was {warmest['temperature_c']} °C at {warmest['observed_at']}")
    return warmest


def set_schedule_active(city: str, active: bool, deployment: str = DEPLOYMENT) -> None:
    """Resume or pause the deployment's schedule whose parameters name this city."""
    with get_client(sync_client=True) as client:
        found = client.read_deployment_by_name(deployment)
        [schedule] = [s for s in found.schedules if s.parameters.get("city") == city]
        # Send the parameters along: on Prefect 3.9.1 an update that names only `active` also resets
        # the schedule's parameters to {} (the server treats the missing field as "no parameters").
        client.update_deployment_schedule(found.id, schedule.id, active=active, parameters=schedule.parameters)
        print(f"{deployment}: schedule {schedule.schedule} for {city} is now {'active' if active else 'paused'}")


def show_delays(deployment: str = DEPLOYMENT) -> None:
    """Print, per completed scheduled run, how long after its due time it started."""
    name = deployment.split("/")[1]
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name])), limit=200
        )
    for run in runs:
        if run.auto_scheduled and run.start_time and run.expected_start_time:
            delay = (run.start_time - run.expected_start_time).total_seconds()
            print(
                f"{run.name}: {run.parameters.get('city')} due {run.expected_start_time:%H:%M:%S}, started {delay:.1f}s later"
            )


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["resume", city]:
            set_schedule_active(city, True)
        case ["pause", city]:
            set_schedule_active(city, False)
        case ["delays"]:
            show_delays()
        case _:
            weather_watch()
