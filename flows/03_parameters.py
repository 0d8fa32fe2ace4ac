"""
# 03 · Parameters and validation: reject a bad input before any run exists

What you will learn
- A flow's typed arguments are its *parameters*. Prefect turns the type hints into a JSON schema:
  the UI draws a form from it (a dropdown for `city`, number fields with limits, a nested section for
  `thresholds`) and the deployment stores it.
- pydantic does the typing: `Literal[...]` for a closed set of values, `Annotated[int, Field(ge=1,
  le=744)]` for a range, a `BaseModel` for a group of settings with their own limits and defaults.
- With `enforce_parameter_schema: true` on the deployment (see `prefect.yaml`), the *server* checks
  the parameters when a run is requested. A bad value is refused right there, with a message naming
  the field: no run is created, no worker starts, nothing half-happens.
- The server checks what a JSON schema can say: types, allowed values, number ranges, list lengths.
  A rule it cannot say (a date's range, one field compared with another) is still checked, by
  pydantic when the run starts, but as a failed run instead of a refused request. Exercise 03 shows it.

How to run it
- `./lab run parameters/parameters` runs with the defaults (Berlin, the last 24 hours).
- In the UI: Deployments → parameters → Run → Custom run. Pick a city, set hours to 48: it runs.
  Set hours to 1000: the form refuses it. Through the API the server refuses it too:
      curl -X POST localhost:4200/api/deployments/DEPLOYMENT_ID/create_flow_run \
           -H 'content-type: application/json' -d '{"parameters": {"city": "Atlantis"}}'
  answers HTTP 409 "Validation failed for field 'city' ..." and no flow run appears.

Walkthrough: the parameter types first, then a task that fetches the weather, then the flow that
summarizes it against the thresholds.
"""

from __future__ import annotations

import os
from statistics import fmean
from typing import Annotated, Any, Literal

import httpx
from prefect import flow, task
from prefect.artifacts import create_table_artifact
from pydantic import BaseModel, Field

UPSTREAM_URL = os.environ.get("LAB_UPSTREAM_URL", "http://127.0.0.1:8700")


# ---------------------------------------------------------------------------------------------
# The parameter types. Each constraint here ends up in the deployment's parameter schema, so the
# server, the UI form and the flow itself all enforce the same rules.
# ---------------------------------------------------------------------------------------------
# The cities the upstream knows. Anything else it would answer with a 400, mid-run; as a Literal the
# mistake is caught before the run starts.
City = Literal["Berlin", "Lagos", "Lima", "Mumbai", "Oslo", "Sydney", "Toronto"]

# 1 hour up to 31 days of hourly readings: the upstream's own limit.
Hours = Annotated[int, Field(ge=1, le=24 * 31, description="How many hourly readings, 1 to 744 (31 days).")]


class Thresholds(BaseModel):
    """When an hour counts as hot or cold. A group of related settings with their own limits."""

    hot_above_c: float = Field(25.0, ge=-60, le=60, description="Hours warmer than this count as hot.")
    cold_below_c: float = Field(0.0, ge=-60, le=60, description="Hours colder than this count as cold.")


# ---------------------------------------------------------------------------------------------
# A network task, with a retry policy. Why these numbers: two retries 1 s apart cover an upstream
# blip in class; a bad city cannot reach this task any more, so every failure here is worth a retry.
# ---------------------------------------------------------------------------------------------
@task(retries=2, retry_delay_seconds=1)
def fetch_weather(city: City, hours: int) -> list[dict[str, Any]]:
    """Fetch hourly weather readings for one city."""
    response = httpx.get(f"{UPSTREAM_URL}/weather", params={"city": city, "hours": hours}, timeout=10)
    response.raise_for_status()
    return response.json()["records"]


# ---------------------------------------------------------------------------------------------
# The flow. Its signature *is* the parameter schema: defaults make a Quick run possible, the types
# and constraints make a bad Custom run impossible.
# ---------------------------------------------------------------------------------------------
@flow(name="parameters", log_prints=True)
def weather_report(city: City = "Berlin", hours: Hours = 24, thresholds: Thresholds = Thresholds()) -> dict[str, Any]:
    """Summarize a city's recent weather: min, mean and max temperature, and how many hours were hot or cold."""
    readings = fetch_weather(city, hours)
    temperatures = [float(r["temperature_c"]) for r in readings if isinstance(r.get("temperature_c"), (int, float))]
    report = {
        "city": city,
        "hours": hours,
        "readings": len(temperatures),
        "min_c": min(temperatures),
        "mean_c": round(fmean(temperatures), 1),
        "max_c": max(temperatures),
        "hot_hours": sum(t > thresholds.hot_above_c for t in temperatures),
        "cold_hours": sum(t < thresholds.cold_below_c for t in temperatures),
    }
    create_table_artifact(key="weather-report", table=[report], description=f"Weather in {city}, last {hours} hour(s).")
    print(
        f"{city}, {hours} h: {report['min_c']} to {report['max_c']} °C (mean {report['mean_c']}); "
        f"{report['hot_hours']} hot, {report['cold_hours']} cold"
    )
    return report


if __name__ == "__main__":
    weather_report()
