"""
# Solution 07 · Caching and secrets: a cheaper report, a webhook that is not in git

How to run it: `.venv/bin/python flows/exercises/solutions/07_caching_and_secrets_solution.py` with
the lab up (it reads LAB_UPSTREAM_URL, default http://127.0.0.1:8700). Create the secret once (step 4 of
flows/exercises/07_caching_and_secrets.md has the command): its value is the one place the URL lives.

Run it twice: the second run's weather tasks end Cached and the upstream's /stats shows no new
requests. Run it with `refresh=True` (from Python: `cached_weather_digest(refresh=True)`) to
fetch again. The digest appears in the inbox, http://localhost:8701.
"""

from __future__ import annotations

import os
from datetime import timedelta
from statistics import fmean

import httpx
from prefect import flow, task
from prefect.blocks.system import Secret
from prefect.cache_policies import INPUTS, TASK_SOURCE

UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")
WEBHOOK_BLOCK = "workshop-webhook-url"


# ---------------------------------------------------------------------------------------------
# Cached for 10 minutes: the weather of the last 24 hours changes slowly, and a digest rerun in
# class should not hit the upstream again. Two retries 1 s apart cover a blip on a cache miss.
# ---------------------------------------------------------------------------------------------
@task(cache_policy=INPUTS + TASK_SOURCE, cache_expiration=timedelta(minutes=10), retries=2, retry_delay_seconds=1)
def mean_temperature(city: str) -> float:
    """Mean temperature of a city over the last 24 hours."""
    response = httpx.get(f"{UPSTREAM_URL}/weather", params={"city": city, "hours": 24}, timeout=10)
    response.raise_for_status()
    return round(fmean(r["temperature_c"] for r in response.json()["records"]), 1)


# Posting is not cached (every run should post) and is retried: a webhook can blip too.
@task(retries=2, retry_delay_seconds=1)
def post_digest(webhook_url: str, digest: str) -> None:
    """Post the digest to a Slack-compatible incoming webhook."""
    httpx.post(webhook_url, json={"text": digest}, timeout=10).raise_for_status()


@flow(name="cached-weather-digest", log_prints=True)
def cached_weather_digest(cities: list[str] = ["Berlin", "Lagos", "Oslo"], refresh: bool = False) -> str:  # noqa: B006
    """Post a digest of a few cities' mean temperatures; the weather comes from a 10-minute cache."""
    fetch = mean_temperature.with_options(refresh_cache=refresh)
    means = {city: future.result() for city, future in zip(cities, fetch.map(cities), strict=True)}
    digest = ", ".join(f"{city} {mean} °C" for city, mean in means.items())
    # Loaded in the flow, never returned by a task: the URL stays out of result storage and logs.
    post_digest(Secret.load(WEBHOOK_BLOCK).get(), digest)
    print(f"posted: {digest}")
    return digest


if __name__ == "__main__":
    cached_weather_digest()
