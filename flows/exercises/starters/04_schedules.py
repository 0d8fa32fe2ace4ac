"""
# Exercise 04 · Schedules: your starting point (flows/exercises/04_schedules.md)

Copy it, then make `./lab check 04` pass:
    mkdir -p flows/mine && cp flows/exercises/starters/04_schedules.py flows/mine/
    .venv/bin/python flows/mine/04_schedules.py
    ./lab check 04
"""

from __future__ import annotations

import os
from typing import Any

import httpx
from prefect import flow, task

UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")
DEPLOYMENT = "weather-watch/weather-watch"

# TODO: the two schedules, both paused (prefect.schedules.Interval and Cron, with parameters=...)
SCHEDULES: list[Any] = []


# TODO: a retry policy (a scheduled run has nobody watching it)
@task
def fetch_weather(city: str, hours: int) -> list[dict[str, Any]]:
    """Fetch hourly weather readings for one city."""
    response = httpx.get(f"{UPSTREAM_URL}/weather", params={"city": city, "hours": hours}, timeout=10)
    response.raise_for_status()
    return response.json()["records"]


@flow(name="weather-watch", log_prints=True)
def weather_watch(city: str = "Oslo", hours: int = 6) -> dict[str, Any]:
    """Log a city's warmest hour among its last readings."""
    readings = fetch_weather(city, hours)
    print(f"{city}: {len(readings)} readings")  # TODO: find and log the warmest one
    return readings[0]


def set_schedule_active(city: str, active: bool, deployment: str = DEPLOYMENT) -> None:
    """Resume or pause the deployment's schedule whose parameters name this city."""
    raise NotImplementedError("TODO: find the schedule through the API and set it active or paused")


if __name__ == "__main__":
    weather_watch()
