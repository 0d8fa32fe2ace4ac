"""
# Solution 03 · Parameters: a date window the server can check, and one rule it cannot

How to run it: `.venv/bin/python flows/exercises/solutions/03_parameters_solution.py` with the lab
up (it reads LAB_UPSTREAM_URL, default http://127.0.0.1:8700). To see the server refuse bad values,
deploy it with `enforce_parameter_schema: true`, this entry in `flows/prefect.yaml`:

    - name: weather-window
      entrypoint: exercises/solutions/03_parameters_solution.py:weather_window
      parameters: {}
      enforce_parameter_schema: true
      work_pool: *workshop_pool

What the server refuses (HTTP 409, no run): what the JSON schema can say, here `cities: []`,
`cities: ["Atlantis"]`. What it lets through: a date outside January (JSON schema has no minimum
for dates), a malformed date (the server does not check `format: date`) and `start` after `end`
(no JSON schema compares two fields). Those fail the run as it starts, when Prefect validates the
parameters with pydantic (ParameterTypeError): the Field bounds and the model_validator run there.
"""

from __future__ import annotations

import os
from collections import defaultdict
from datetime import date, datetime
from statistics import fmean
from typing import Annotated, Any, Literal

import httpx
from prefect import flow, task
from prefect.artifacts import create_table_artifact
from pydantic import BaseModel, Field, model_validator

UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")
FIRST_DAY, LAST_DAY = date(2026, 1, 1), date(2026, 1, 31)

City = Literal["Berlin", "Lagos", "Lima", "Mumbai", "Oslo", "Sydney", "Toronto"]
Day = Annotated[date, Field(ge=FIRST_DAY, le=LAST_DAY, description="A day in January 2026.")]


class Window(BaseModel):
    """A range of days, both ends included."""

    start: Day = date(2026, 1, 1)
    end: Day = date(2026, 1, 3)

    # Not in the JSON schema: the server cannot check it; pydantic does, when the run starts.
    @model_validator(mode="after")
    def start_not_after_end(self) -> Window:
        if self.start > self.end:
            raise ValueError(f"window.start ({self.start}) is after window.end ({self.end})")
        return self


# Two retries 1 s apart: enough for a classroom blip; the parameters are already valid by now.
@task(retries=2, retry_delay_seconds=1)
def fetch_weather(city: City, hours: int) -> list[dict[str, Any]]:
    """Fetch hourly readings for a city from 2026-01-01 00:00 on."""
    response = httpx.get(f"{UPSTREAM_URL}/weather", params={"city": city, "hours": hours}, timeout=10)
    response.raise_for_status()
    return response.json()["records"]


@flow(name="weather-window", log_prints=True)
def weather_window(
    cities: Annotated[list[City], Field(min_length=1, max_length=4)] = ["Berlin", "Oslo"],  # noqa: B006 (Prefect copies defaults)
    window: Window = Window(),
) -> list[dict[str, Any]]:
    """Daily mean temperature per city over a window of days in January 2026."""
    hours = ((window.end - FIRST_DAY).days + 1) * 24
    rows = []
    for city in cities:
        per_day: dict[date, list[float]] = defaultdict(list)
        for reading in fetch_weather(city, hours):
            day = datetime.fromisoformat(reading["observed_at"]).date()
            if day >= window.start:
                per_day[day].append(reading["temperature_c"])
        rows += [
            {"city": city, "day": day.isoformat(), "mean_c": round(fmean(t), 1)} for day, t in sorted(per_day.items())
        ]
    create_table_artifact(key="weather-window", table=rows, description=f"Daily means, {window.start} to {window.end}.")
    print(f"{len(rows)} city-days from {window.start} to {window.end}")
    return rows


if __name__ == "__main__":
    weather_window()
