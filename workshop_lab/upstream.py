"""The flaky upstream: a seeded HTTP API that fails on purpose, so "negative engineering" is
something a learner sees happen in class, without the internet.

It serves realistic, deterministic data (the same seed gives the same records) and injects the
failures production pipelines meet: 5xx answers, requests that hang past a client's timeout,
latency, and malformed records. An instructor turns the chaos up or down while it runs:

    curl localhost:8700/chaos                                   # the current settings
    curl -X PATCH localhost:8700/chaos -H 'content-type: application/json' \\
         -d '{"failure_rate": 0.3, "malformed_rate": 0.05}'     # change some of them
    curl -X POST localhost:8700/chaos/reset                     # back to the start-up settings

Endpoints: GET /customers, /orders (paged: ?page=1&page_size=100), /weather?city=Berlin&hours=24,
GET /stats (what was served and injected), GET /health. Run it: `python -m workshop_lab.upstream`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

CUSTOMERS = 500
ORDERS = 5000
MAX_PAGE_SIZE = 500
CITIES = ("Berlin", "Lagos", "Lima", "Mumbai", "Oslo", "Sydney", "Toronto")
EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


class Chaos(BaseModel):
    """How unreliable the upstream is. Rates are shares of requests (or records) from 0 to 1."""

    failure_rate: float = Field(0.0, ge=0, le=1, description="share of data requests answered 503")
    timeout_rate: float = Field(0.0, ge=0, le=1, description="share of data requests that hang for hang_seconds")
    malformed_rate: float = Field(0.0, ge=0, le=1, description="share of records returned malformed")
    latency_ms: int = Field(0, ge=0, le=60_000, description="added to every data request")
    hang_seconds: float = Field(30.0, ge=0, le=600, description="how long a 'timeout' request hangs")
    fail_next: int = Field(0, ge=0, description="the next N data requests answer 503, whatever the rates")
    seed: int = Field(42, description="seeds the chaos: the same seed gives the same sequence of failures")


class ChaosUpdate(BaseModel):
    failure_rate: float | None = Field(None, ge=0, le=1)
    timeout_rate: float | None = Field(None, ge=0, le=1)
    malformed_rate: float | None = Field(None, ge=0, le=1)
    latency_ms: int | None = Field(None, ge=0, le=60_000)
    hang_seconds: float | None = Field(None, ge=0, le=600)
    fail_next: int | None = Field(None, ge=0)
    seed: int | None = None


def chaos_from_environment() -> Chaos:
    """Start-up settings: UPSTREAM_FAILURE_RATE, UPSTREAM_LATENCY_MS, ... (one per Chaos field)."""
    values = {name: os.environ[f"UPSTREAM_{name.upper()}"] for name in Chaos.model_fields if f"UPSTREAM_{name.upper()}" in os.environ}
    return Chaos(**values)


# --- the data: a pure function of the record's id, so every page is reproducible ---------------
def customer(customer_id: int) -> dict[str, Any]:
    rng = random.Random(f"customer-{customer_id}")
    first = rng.choice(["Ada", "Grace", "Alan", "Katherine", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Frances"])
    last = rng.choice(["Lovelace", "Hopper", "Turing", "Johnson", "Torvalds", "Hamilton", "Ritchie", "Liskov", "Thompson", "Allen"])
    return {
        "customer_id": customer_id,
        "name": f"{first} {last}",
        "email": f"{first.lower()}.{last.lower()}{customer_id}@example.com",
        "country": rng.choice(["DE", "NG", "PE", "IN", "NO", "AU", "CA", "US", "GB", "FR"]),
        "signed_up_at": (EPOCH - timedelta(days=rng.randint(0, 900))).isoformat(),
    }


def order(order_id: int) -> dict[str, Any]:
    rng = random.Random(f"order-{order_id}")
    return {
        "order_id": order_id,
        "customer_id": rng.randint(1, CUSTOMERS),
        "amount": round(rng.lognormvariate(3.5, 0.8), 2),
        "currency": "EUR",
        "status": rng.choices(["completed", "shipped", "returned", "cancelled"], weights=[70, 20, 6, 4])[0],
        "ordered_at": (EPOCH + timedelta(minutes=order_id * 97 % (60 * 24 * 300))).isoformat(),
    }


def weather(city: str, hour: int) -> dict[str, Any]:
    rng = random.Random(f"weather-{city}-{hour}")
    base = {"Berlin": 9, "Lagos": 27, "Lima": 19, "Mumbai": 28, "Oslo": 5, "Sydney": 18, "Toronto": 7}[city]
    return {
        "city": city,
        "observed_at": (EPOCH + timedelta(hours=hour)).isoformat(),
        "temperature_c": round(base + rng.gauss(0, 4), 1),
        "humidity_pct": rng.randint(20, 100),
    }


def malform(record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """Break a record the ways real feeds break: a missing key, a wrong type, an impossible value."""
    broken = dict(record)
    key = rng.choice([k for k in record if not k.endswith("_id") and k != "city"])
    match rng.randrange(3):
        case 0:
            broken.pop(key)
        case 1:
            broken[key] = f"{record[key]} ??"
        case _:
            broken[key] = None
    return broken


# --- the app ------------------------------------------------------------------------------------
def create_app(initial: Chaos | None = None) -> FastAPI:
    app = FastAPI(title="Flaky upstream", description=__doc__)
    start = initial or chaos_from_environment()
    state: dict[str, Any] = {"chaos": start, "rng": random.Random(start.seed), "stats": {}}

    def reset_stats() -> None:
        state["stats"] = {"requests": 0, "failures": 0, "timeouts": 0, "malformed_records": 0, "records": 0}

    reset_stats()

    async def misbehave() -> None:
        """Apply the chaos to one data request: latency, then maybe a hang or a 503."""
        chaos: Chaos = state["chaos"]
        rng: random.Random = state["rng"]
        state["stats"]["requests"] += 1
        if chaos.latency_ms:
            await asyncio.sleep(chaos.latency_ms / 1000)
        if chaos.fail_next:
            state["chaos"] = chaos.model_copy(update={"fail_next": chaos.fail_next - 1})
            state["stats"]["failures"] += 1
            raise HTTPException(503, "upstream unavailable (fail_next)")
        roll = rng.random()
        if roll < chaos.timeout_rate:
            state["stats"]["timeouts"] += 1
            await asyncio.sleep(chaos.hang_seconds)
        elif roll < chaos.timeout_rate + chaos.failure_rate:
            state["stats"]["failures"] += 1
            raise HTTPException(503, "upstream unavailable (failure_rate)")

    def deliver(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        chaos: Chaos = state["chaos"]
        rng: random.Random = state["rng"]
        out = []
        for record in records:
            if chaos.malformed_rate and rng.random() < chaos.malformed_rate:
                record = malform(record, rng)
                state["stats"]["malformed_records"] += 1
            out.append(record)
        state["stats"]["records"] += len(out)
        return out

    def page_of(total: int, page: int, page_size: int, make) -> dict[str, Any]:
        if page_size > MAX_PAGE_SIZE:
            # A client error: retrying it cannot help (the retries lesson tells 400 from 503).
            raise HTTPException(400, f"page_size may be at most {MAX_PAGE_SIZE}")
        first = (page - 1) * page_size + 1
        ids = range(first, min(first + page_size, total + 1))
        return {"page": page, "page_size": page_size, "total": total, "records": deliver([make(i) for i in ids])}

    @app.get("/health", response_class=PlainTextResponse)
    async def health() -> str:
        return "ok"

    @app.get("/customers")
    async def customers(page: int = Query(1, ge=1), page_size: int = Query(100, ge=1)) -> dict[str, Any]:
        await misbehave()
        return page_of(CUSTOMERS, page, page_size, customer)

    @app.get("/orders")
    async def orders(page: int = Query(1, ge=1), page_size: int = Query(100, ge=1)) -> dict[str, Any]:
        await misbehave()
        return page_of(ORDERS, page, page_size, order)

    @app.get("/weather")
    async def readings(city: str = "Berlin", hours: int = Query(24, ge=1, le=24 * 31)) -> dict[str, Any]:
        if city not in CITIES:
            raise HTTPException(400, f"unknown city {city!r}; known: {', '.join(CITIES)}")
        await misbehave()
        return {"city": city, "records": deliver([weather(city, h) for h in range(hours)])}

    @app.get("/chaos")
    async def get_chaos() -> Chaos:
        return state["chaos"]

    @app.patch("/chaos")
    async def update_chaos(update: ChaosUpdate) -> Chaos:
        changes = update.model_dump(exclude_none=True)
        state["chaos"] = state["chaos"].model_copy(update=changes)
        if "seed" in changes:
            state["rng"] = random.Random(changes["seed"])
        return state["chaos"]

    @app.post("/chaos/reset")
    async def reset_chaos() -> Chaos:
        state["chaos"], state["rng"] = start, random.Random(start.seed)
        reset_stats()
        return start

    @app.get("/stats")
    async def stats() -> JSONResponse:
        return JSONResponse(state["stats"])

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Run the flaky upstream API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8700)
    args = parser.parse_args()
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
