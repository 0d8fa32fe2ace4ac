"""
# Exercise 10 · Flow of flows: your starting point (flows/exercises/10_subflows.md)

Copy it, then make `./lab check 10` pass:
    mkdir -p flows/mine && cp flows/exercises/starters/10_subflows.py flows/mine/
    .venv/bin/python flows/mine/10_subflows.py
    ./lab check 10
"""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import flow

CITIES = ["Berlin", "Lagos", "Lima", "Mumbai", "Oslo", "Sydney", "Toronto"]
CHILD = "city-weather/city-weather"


# TODO: a subflow `rank-cities` that ranks the summaries warmest first and publishes the
# table artifact "weather-ranking"


@flow(name="weather-ranking", log_prints=True)
async def weather_ranking(cities: list[str] = CITIES) -> list[dict[str, Any]]:  # noqa: B006
    """Run city-weather for every city at once, then rank the cities in a subflow."""
    # TODO: one city-weather deployment run per city, all at once (arun_deployment + asyncio.gather,
    # with a timeout); read each child's result; rank them in the subflow
    return []


if __name__ == "__main__":
    asyncio.run(weather_ranking())
