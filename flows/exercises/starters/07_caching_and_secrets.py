"""
# Exercise 07 · Caching and secrets: your starting point (flows/exercises/07_caching_and_secrets.md)

Copy it, then make `./lab check 07` pass:
    mkdir -p flows/mine && cp flows/exercises/starters/07_caching_and_secrets.py flows/mine/
    .venv/bin/python flows/mine/07_caching_and_secrets.py
    ./lab check 07
"""

from __future__ import annotations

import os
from statistics import fmean

import httpx
from prefect import flow, task

UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")
WEBHOOK_BLOCK = "workshop-webhook-url"  # the Secret block that holds the webhook URL


# TODO: cache it (INPUTS + TASK_SOURCE, 10 minutes)
@task(retries=2, retry_delay_seconds=1)
def mean_temperature(city: str) -> float:
    """Mean temperature of a city over the last 24 hours."""
    response = httpx.get(f"{UPSTREAM_URL}/weather", params={"city": city, "hours": 24}, timeout=10)
    response.raise_for_status()
    return round(fmean(r["temperature_c"] for r in response.json()["records"]), 1)


# TODO: a parameter `refresh: bool = False` that makes the weather task ignore its cache
@flow(name="cached-weather-digest", log_prints=True)
def cached_weather_digest(cities: list[str] = ["Berlin", "Lagos", "Oslo"]) -> str:  # noqa: B006
    """Post a digest of a few cities' mean temperatures; the weather comes from a 10-minute cache."""
    means = {city: future.result() for city, future in zip(cities, mean_temperature.map(cities), strict=True)}
    digest = ", ".join(f"{city} {mean} °C" for city, mean in means.items())
    # TODO: load the webhook URL from the Secret block and post {"text": digest} to it
    print(f"digest: {digest}")
    return digest


if __name__ == "__main__":
    cached_weather_digest()
