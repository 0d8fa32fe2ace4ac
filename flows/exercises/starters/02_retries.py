"""
# Exercise 02 · Retries: your starting point (flows/exercises/02_retries.md)

Copy it, then make `./lab check 02` pass:
    mkdir -p flows/mine && cp flows/exercises/starters/02_retries.py flows/mine/
    .venv/bin/python flows/mine/02_retries.py
    ./lab check 02
"""

from __future__ import annotations

import os
from statistics import fmean
from typing import Any

import httpx
from prefect import flow, task

UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")
CITIES = ["Berlin", "Lagos", "Oslo", "Sydney", "Atlantis"]  # Atlantis: the upstream answers 400


# TODO: a 1 s timeout; retries with exponential_backoff, jitter and a retry_condition_fn
# that retries 503s and timeouts but not a 400; record the attempt number
@task
def fetch_weather(city: str) -> dict[str, Any]:
    """Fetch 24 hours of weather for a city; report the mean temperature and which attempt succeeded."""
    response = httpx.get(f"{UPSTREAM_URL}/weather", params={"city": city, "hours": 24})
    response.raise_for_status()
    return {"city": city, "mean_c": round(fmean(r["temperature_c"] for r in response.json()["records"]), 1)}


@flow(name="weather-retries", log_prints=True)
def weather_retries(cities: list[str] = CITIES) -> dict[str, Any]:
    """Fetch every city's weather; report the good ones and name the ones that failed for good."""
    results = [fetch_weather(city) for city in cities]  # TODO: a failed city must not fail the flow
    return {"results": results, "failed": {}}


if __name__ == "__main__":
    weather_retries()
