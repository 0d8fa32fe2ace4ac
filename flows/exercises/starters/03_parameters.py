"""
# Exercise 03 · Parameters: your starting point (flows/exercises/03_parameters.md)

Copy it, then make `./lab check 03` pass:
    mkdir -p flows/mine && cp flows/exercises/starters/03_parameters.py flows/mine/
    .venv/bin/python flows/mine/03_parameters.py
    ./lab check 03
"""

from __future__ import annotations

import os
from datetime import date
from typing import Any

import httpx
from prefect import flow, task
from prefect.artifacts import create_table_artifact
from pydantic import BaseModel

UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")


class Window(BaseModel):
    """A range of days, both ends included."""

    # TODO: both between 2026-01-01 and 2026-01-31, and start not after end (a model_validator)
    start: date = date(2026, 1, 1)
    end: date = date(2026, 1, 3)


# Two retries 1 s apart: enough for a classroom blip.
@task(retries=2, retry_delay_seconds=1)
def fetch_weather(city: str, hours: int) -> list[dict[str, Any]]:
    """Fetch hourly readings for a city from 2026-01-01 00:00 on."""
    response = httpx.get(f"{UPSTREAM_URL}/weather", params={"city": city, "hours": hours}, timeout=10)
    response.raise_for_status()
    return response.json()["records"]


@flow(name="weather-window", log_prints=True)
def weather_window(cities: list[str] = ["Berlin", "Oslo"], window: Window = Window()) -> list[dict[str, Any]]:  # noqa: B006
    """Daily mean temperature per city over a window of days in January 2026."""
    # TODO: cities: 1 to 4 of the upstream's cities (Literal, Field(min_length=..., max_length=...))
    # TODO: fetch the hours the window needs, drop readings before start, mean per city and day
    rows: list[dict[str, Any]] = []
    create_table_artifact(key="weather-window", table=rows or [{"city": None, "day": None, "mean_c": None}])
    return rows


if __name__ == "__main__":
    weather_window()
