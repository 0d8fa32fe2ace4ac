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
GET /stats (what was served and injected), GET /health. `/` (in a browser) lists them with example
links and shows the chaos settings; `/docs` (Swagger UI) and `/redoc` describe every endpoint and
work offline. An unknown chaos setting is refused (422) with its name, never silently ignored.
Run it: `python -m workshop_lab.course_services.upstream`.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import logging
import os
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute

# FastAPI's /docs and /redoc load Swagger UI and ReDoc from a CDN: a blank page offline (in class,
# on a train). fastapi-offline ships those files and serves them from the app itself.
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field

# uvicorn's own logger: its handler prints to the service's log.
LOG = logging.getLogger("uvicorn.error")
CUSTOMERS = 500
ORDERS = 5000
MAX_PAGE_SIZE = 500
CITIES = ("Berlin", "Lagos", "Lima", "Mumbai", "Oslo", "Sydney", "Toronto")
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


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
    """A PATCH of some chaos settings. A misspelt name is refused: silently ignoring it would leave
    the instructor believing the chaos changed when it did not."""

    model_config = ConfigDict(extra="forbid")

    failure_rate: float | None = Field(None, ge=0, le=1)
    timeout_rate: float | None = Field(None, ge=0, le=1)
    malformed_rate: float | None = Field(None, ge=0, le=1)
    latency_ms: int | None = Field(None, ge=0, le=60_000)
    hang_seconds: float | None = Field(None, ge=0, le=600)
    fail_next: int | None = Field(None, ge=0)
    seed: int | None = None


assert ChaosUpdate.model_fields.keys() == Chaos.model_fields.keys(), "every chaos setting can be PATCHed"

# Example queries for the endpoint links on `/`.
EXAMPLE_QUERIES = {
    "/customers": "?page=1&page_size=5",
    "/orders": "?page=2&page_size=5",
    "/weather": "?city=Berlin&hours=3",
}


def chaos_from_environment() -> Chaos:
    """Start-up settings: UPSTREAM_FAILURE_RATE, UPSTREAM_LATENCY_MS, ... (one per Chaos field)."""
    values = {
        name: os.environ[f"UPSTREAM_{name.upper()}"]
        for name in Chaos.model_fields
        if f"UPSTREAM_{name.upper()}" in os.environ
    }
    return Chaos(**values)


# --- the data: a pure function of the record's id, so every page is reproducible ---------------
def customer(customer_id: int) -> dict[str, Any]:
    rng = random.Random(f"customer-{customer_id}")
    first = rng.choice(
        ["Ada", "Grace", "Alan", "Katherine", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Frances"]
    )
    last = rng.choice(
        ["Lovelace", "Hopper", "Turing", "Johnson", "Torvalds", "Hamilton", "Ritchie", "Liskov", "Thompson", "Allen"]
    )
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
    # validatorUrl None: Swagger UI would otherwise ask an online validator about the spec.
    app = FastAPIOffline(title="Flaky upstream", description=__doc__, swagger_ui_parameters={"validatorUrl": None})
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

    @app.exception_handler(RequestValidationError)
    async def chaos_mistakes(request: Request, exc: RequestValidationError) -> JSONResponse:
        """The two mistakes made typing a PATCH /chaos, each answered in one line: a name that is
        not a setting (say which, and which there are), and a body that is not JSON (curl's -d
        without the content-type header sends a form). Anything else: FastAPI's own answer."""
        errors = exc.errors()
        if request.url.path == "/chaos" and request.method == "PATCH":
            unknown = [e["loc"][-1] for e in errors if e["type"] == "extra_forbidden" and e["loc"][:1] == ("body",)]
            if unknown and len(unknown) == len(errors):
                return JSONResponse(
                    status_code=422,
                    content={
                        "detail": f"unknown chaos setting{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}: "
                        f"nothing was changed. The settings are {', '.join(Chaos.model_fields)} "
                        "(GET /chaos shows their values).",
                        "unknown": unknown,
                    },
                )
            if "json" not in request.headers.get("content-type", "") and any(e["loc"] == ("body",) for e in errors):
                return JSONResponse(
                    status_code=422,
                    content={
                        "detail": "PATCH /chaos takes a JSON body: nothing was changed. Send it with "
                        "-H 'content-type: application/json' -d '{\"failure_rate\": 0.3}'.",
                    },
                )
        return await request_validation_exception_handler(request, exc)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index(request: Request) -> str:
        """What this is, its endpoints with example links, and the chaos settings now."""
        return index_page(app, state["chaos"], str(request.base_url).rstrip("/"))

    @app.get("/health", response_class=PlainTextResponse)
    async def health() -> str:
        """Liveness: answers "ok", never misbehaves."""
        return "ok"

    @app.get("/customers")
    async def customers(page: int = Query(1, ge=1), page_size: int = Query(100, ge=1)) -> dict[str, Any]:
        """Customers, a page at a time (500 in all). Subject to the chaos."""
        await misbehave()
        return page_of(CUSTOMERS, page, page_size, customer)

    @app.get("/orders")
    async def orders(page: int = Query(1, ge=1), page_size: int = Query(100, ge=1)) -> dict[str, Any]:
        """Orders, a page at a time (5000 in all). Subject to the chaos."""
        await misbehave()
        return page_of(ORDERS, page, page_size, order)

    @app.get("/weather")
    async def readings(city: str = "Berlin", hours: int = Query(24, ge=1, le=24 * 31)) -> dict[str, Any]:
        """Hourly readings for one city. Subject to the chaos."""
        if city not in CITIES:
            raise HTTPException(400, f"unknown city {city!r}; known: {', '.join(CITIES)}")
        await misbehave()
        return {"city": city, "records": deliver([weather(city, h) for h in range(hours)])}

    @app.get("/chaos")
    async def get_chaos() -> Chaos:
        """The chaos settings now."""
        return state["chaos"]

    @app.patch("/chaos")
    async def update_chaos(update: ChaosUpdate) -> Chaos:
        """Change some chaos settings (JSON body); the others keep their values."""
        changes = update.model_dump(exclude_none=True)
        state["chaos"] = state["chaos"].model_copy(update=changes)
        LOG.info("chaos changed: %s", changes)
        if "seed" in changes:
            state["rng"] = random.Random(changes["seed"])
        return state["chaos"]

    @app.post("/chaos/reset")
    async def reset_chaos() -> Chaos:
        """Back to the start-up chaos settings, and the stats to zero."""
        state["chaos"], state["rng"] = start, random.Random(start.seed)
        reset_stats()
        LOG.info("chaos reset to the start-up settings: %s", start.model_dump())
        return start

    @app.get("/stats")
    async def stats() -> JSONResponse:
        """What was served and what was injected since start-up (or the last reset)."""
        return JSONResponse(state["stats"])

    return app


def index_page(app: FastAPI, chaos: Chaos, base_url: str) -> str:
    """The `/` page: plain HTML, no external assets. The endpoint list is read from the app's own
    routes, so a new endpoint shows up here with its docstring."""
    e = html.escape
    rows = []
    for route in app.routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        for method in sorted(route.methods):
            target = route.path + EXAMPLE_QUERIES.get(route.path, "")
            where = f'<a href="{e(target)}">{e(target)}</a>' if method == "GET" else f"<code>{e(route.path)}</code>"
            summary = (route.description or "").strip().splitlines()[0] if route.description else ""
            rows.append(f"<tr><td>{method}</td><td>{where}</td><td>{e(summary)}</td></tr>")
    settings = "".join(
        f"<tr><td><code>{name}</code></td><td>{e(str(getattr(chaos, name)))}</td><td>{e(field.description or '')}</td></tr>"
        for name, field in Chaos.model_fields.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Flaky upstream</title>
<style>
 body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.4; }}
 table {{ border-collapse: collapse; margin-bottom: 1.5rem; }} td, th {{ border-bottom: 1px solid #ddd; padding: .3rem .8rem; text-align: left; }}
 pre {{ background: #f4f4f4; padding: .6rem; overflow-x: auto; }}
</style></head><body>
<h1>Flaky upstream</h1>
<p>The course's unreliable API: seeded, deterministic data (the same request gives the same records)
that fails on purpose, as production APIs do: 503 answers, requests that hang, latency, malformed
records. How much, is set by the chaos settings below. Every endpoint in detail: <a href="/docs">/docs</a>
(Swagger UI, try requests there) or <a href="/redoc">/redoc</a>; the spec: <a href="/openapi.json">/openapi.json</a>.</p>
<h2>Endpoints</h2>
<table><tr><th>method</th><th>path</th><th>what</th></tr>
{"".join(rows)}
</table>
<h2>Chaos settings now</h2>
<table><tr><th>setting</th><th>value</th><th>meaning</th></tr>
{settings}
</table>
<p>Change some of them (the others keep their values; an unknown name is refused with 422):</p>
<pre>curl -X PATCH {e(base_url)}/chaos -H 'content-type: application/json' \\
     -d '{{"failure_rate": 0.3, "malformed_rate": 0.05}}'
curl -X POST {e(base_url)}/chaos/reset      # back to the start-up settings</pre>
<p>Start-up settings come from the environment: <code>UPSTREAM_FAILURE_RATE</code>, <code>UPSTREAM_LATENCY_MS</code>, ...
(one per setting). Reload this page to see the settings now.</p>
</body></html>
"""


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Run the flaky upstream API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8700)
    args = parser.parse_args()
    # At INFO: `./lab logs upstream` shows each request with its status (the injected 503s too) and
    # every chaos change, so an instructor sees what the class's flows met.
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
