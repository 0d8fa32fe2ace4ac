"""
# Solution 02 · Retries: retry what can heal, fail fast on what cannot

How to run it: `.venv/bin/python flows/exercises/solutions/02_retries_solution.py` with the lab up
(it reads LAB_UPSTREAM_URL, default http://127.0.0.1:8700). Set the chaos first:

    curl -X PATCH localhost:8700/chaos -H 'content-type: application/json' \\
         -d '{"failure_rate": 0.2, "timeout_rate": 0.1, "hang_seconds": 3, "seed": 7}'

and put it back afterwards with `curl -X POST localhost:8700/chaos/reset`.
"""

from __future__ import annotations

import os
from statistics import fmean
from typing import Any

import httpx
from prefect import Task, flow, task
from prefect.client.schemas.objects import State, TaskRun
from prefect.runtime import task_run
from prefect.tasks import exponential_backoff

UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")
CITIES = ["Berlin", "Lagos", "Oslo", "Sydney", "Atlantis"]  # Atlantis: the upstream answers 400


def is_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry 5xx answers and timeouts or dropped connections; never a 4xx."""
    try:
        state.result()
    except httpx.HTTPStatusError as error:
        return error.response.status_code >= 500
    except httpx.TransportError:  # includes httpx.TimeoutException
        return True
    except Exception:
        return False
    return False


# ---------------------------------------------------------------------------------------------
# 4 retries at about 0.25, 0.5, 1 and 2 s (jittered by up to 50%): under 4 s of waiting, plus at
# most 1 s per timed-out attempt. With 30% of requests going bad, five failed attempts in a row
# happen to about 1 task in 400: rare enough for class, and the run then names the city that failed.
# ---------------------------------------------------------------------------------------------
@task(
    retries=4,
    retry_delay_seconds=exponential_backoff(backoff_factor=0.25),
    retry_jitter_factor=0.5,
    retry_condition_fn=is_transient,
)
def fetch_weather(city: str) -> dict[str, Any]:
    """Fetch 24 hours of weather for a city; report the mean temperature and which attempt succeeded."""
    response = httpx.get(f"{UPSTREAM_URL}/weather", params={"city": city, "hours": 24}, timeout=1)
    response.raise_for_status()
    temperatures = [r["temperature_c"] for r in response.json()["records"]]
    return {"city": city, "mean_c": round(fmean(temperatures), 1), "attempts": task_run.run_count}


@flow(name="weather-retries", log_prints=True)
def weather_retries(cities: list[str] = CITIES) -> dict[str, Any]:
    """Fetch every city's weather; report the good ones and name the ones that failed for good."""
    futures = fetch_weather.map(cities)
    results, failed = [], {}
    for city, future in zip(cities, futures, strict=True):
        future.wait()
        if future.state.is_completed():
            results.append(future.result())
        else:
            failed[city] = future.state.message
    for row in results:
        print(f"{row['city']}: {row['mean_c']} °C after {row['attempts']} attempt(s)")
    for city, message in failed.items():
        print(f"{city}: FAILED ({message})")
    return {"results": results, "failed": failed}


if __name__ == "__main__":
    weather_retries()
