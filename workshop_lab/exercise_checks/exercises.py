"""Every exercise's checks: the steps that run the learner's flow, and the requirements read back.

Each requirement is a sentence and a small function returning (met, what it saw). The right
answers come from the lab's own deterministic data (`workshop_lab.course_services.upstream`: the same seed gives
the same records, so a mean or a count is known before the run), from the upstream's /stats and
from the inbox, never from the learner's code.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date, timedelta
from statistics import fmean
from typing import Any

import duckdb

from workshop_lab.course_services.upstream import CUSTOMERS, customer, order, weather
from workshop_lab.exercise_checks import Check, Exercise, NotChecked, Requirement, ends, most_in_flight, named, state_of
from workshop_lab.stack.settings import FLOWS_DIR

R = Requirement


def run(step_id: str, flow: str, **parameters: Any) -> dict[str, Any]:
    arguments = ", ".join(f"{name}={value!r}" for name, value in parameters.items())
    return {"id": step_id, "do": "run", "flow": flow, "parameters": parameters, "what": f"the run {flow}({arguments})"}


def chaos(step_id: str, **settings: Any) -> dict[str, Any]:
    return {"id": step_id, "do": "chaos", "chaos": settings}


RESTORE_CHAOS = {"id": "restore-chaos", "do": "chaos", "restore": True}


def mean_c(city: str, hours: range) -> float:
    return round(fmean(weather(city, h)["temperature_c"] for h in hours), 1)


def requests_made(c: Check, step_id: str) -> int:
    before, after = c.run(step_id)["upstream_requests"]
    return after - before


# --- 00 · Hello, lab ------------------------------------------------------------------------------
ITEMS_00 = 5


def hello_squares_right(c: Check) -> tuple[bool, str]:
    rows = c.artifact("run", "hello-squares")
    if rows is None:
        return False, "the run made no table artifact 'hello-squares'"
    squares = sorted((int(r["item"]), int(r["square"])) for r in rows)
    return squares == [(i, i * i) for i in range(ITEMS_00)], f"(item, square) rows {squares}"


def hello_on_dask(c: Check) -> tuple[bool, str]:
    lab_workers = set(c.step("workers")["workers"])
    seen = {str(r.get("dask_worker")) for r in c.artifact("run", "hello-squares") or []}
    return (
        bool(seen) and seen <= lab_workers,
        f"tasks ran on {sorted(seen) or 'nothing'}; the lab's Dask workers are {sorted(lab_workers)}",
    )


def hello_tasks(c: Check) -> tuple[bool, str]:
    states = Counter(t["state_type"] for t in c.task_runs("run"))
    return states == Counter({"COMPLETED": ITEMS_00}), f"task runs: {dict(states) or 'none'}"


# --- 01 · Negative engineering ------------------------------------------------------------------
def quarantine_01(c: Check) -> list[dict[str, Any]]:
    rows = c.artifact("run", "customer-quarantine")
    if rows is None:
        raise AssertionError("the run made no table artifact 'customer-quarantine'")
    return [r for r in rows if r.get("customer_id") is not None]


def reconciles_01(c: Check) -> tuple[bool, str]:
    countries = c.artifact("run", "customer-countries") or []
    kept = sum(int(r["customers"]) for r in countries)
    quarantined = len(quarantine_01(c))
    return (
        kept + quarantined == CUSTOMERS,
        f"{kept} kept in 'customer-countries' + {quarantined} quarantined, of {CUSTOMERS}",
    )


def quarantine_matches_01(c: Check) -> tuple[bool, str]:
    broken = c.step("stats")["stats"]["malformed_records"]
    rows = quarantine_01(c)
    reasons = all(str(r.get("reason") or "").strip() for r in rows)
    return (
        len(rows) == broken and reasons,
        f"{len(rows)} quarantined{'' if reasons else ' (some without a reason)'}; the upstream broke {broken}",
    )


def retried_01(c: Check) -> tuple[bool, str]:
    counts = sorted(t["run_count"] for t in named(c.task_runs("run"), "fetch_customers_page"))
    return bool(counts) and counts[-1] > 1, f"fetch_customers_page run counts {counts or 'none'}"


# --- 02 · Retries ---------------------------------------------------------------------------------
CITIES_02 = ["Berlin", "Lagos", "Oslo", "Atlantis"]
# With seed 7 the upstream's first rolls are: ok, 503, ok, hang, ... So the three good cities' first
# attempts meet one 503, and the retry of that city hangs (for 3 s: under httpx's default timeout
# of 5 s, so only a shorter timeout of the learner's own turns that hang into a failed attempt).
CHAOS_02 = {"failure_rate": 0.2, "timeout_rate": 0.1, "hang_seconds": 3, "seed": 7}
TIMEOUT_ERROR_02 = re.compile(r"Task run failed with exception: (\w*Timeout\w*)\(.*Retry \d+/\d+ will start")


def fetch_weather_runs(c: Check) -> list[dict[str, Any]]:
    return named(c.task_runs("run"), "fetch_weather")


def timeout_02(c: Check) -> tuple[bool, str]:
    hung = c.step("stats")["stats"]["timeouts"]
    timeouts = TIMEOUT_ERROR_02.findall(c.logs("run"))
    if not hung:
        return False, (
            "not checked: no request reached the point where the upstream hangs one (the retry of the "
            f"city that got a 503); the run ended {state_of(c, 'run')}"
        )
    if timeouts:
        return (
            True,
            f"the upstream hung {hung} request(s) for {CHAOS_02['hang_seconds']} s; fetch_weather failed on {', '.join(sorted(set(timeouts)))} and retried",
        )
    return False, (
        f"the upstream hung {hung} request(s) for {CHAOS_02['hang_seconds']} s, and no attempt failed on a timeout: "
        "the request waited the hang out (its timeout is longer than the hang: httpx's default is 5 s; give the request timeout=1.0)"
    )


def backoff_02(c: Check) -> tuple[bool, str]:
    found = c.step("task")
    delays, jitter = found["retry_delay_seconds"], found["retry_jitter_factor"]
    listed = delays if isinstance(delays, list) else [delays] * found["retries"]
    listed = listed[: found["retries"]] + listed[-1:] * max(
        0, found["retries"] - len(listed)
    )  # Prefect repeats the last delay
    waiting = sum(d or 0 for d in listed)
    growing = found["retries"] >= 2 and all(b >= 1.5 * a > 0 for a, b in zip(listed, listed[1:], strict=False))
    problems = [
        why
        for bad, why in [
            (found["retries"] < 2, "fewer than 2 retries"),
            (not growing, "the delays do not grow (exponential_backoff doubles them)"),
            (not jitter, "no retry_jitter_factor"),
            (waiting > 5.5, f"{waiting:g} s of waiting in all (more than about 5)"),
            (not found["retry_condition_fn"], "no retry_condition_fn"),
        ]
        if bad
    ]
    return not problems, (
        f"fetch_weather: retries={found['retries']}, delays {[round(d, 3) for d in listed if d is not None]} s "
        f"({waiting:g} s in all), retry_jitter_factor={jitter}, retry_condition_fn={found['retry_condition_fn']}"
        + (f": {'; '.join(problems)}" if problems else "")
    )


def retried_not_atlantis_02(c: Check) -> tuple[bool, str]:
    runs = fetch_weather_runs(c)
    done = sorted(t["run_count"] for t in runs if t["state_type"] == "COMPLETED")
    atlantis = [t["run_count"] for t in runs if "Atlantis" in ((t.get("state") or {}).get("message") or "")]
    saw = f"{len(done)} of the 3 good cities completed, after {done or 'no'} attempt(s); " + (
        f"Atlantis's task run failed after {atlantis[0]} attempt(s)" if atlantis else "no task run failed on Atlantis"
    )
    if len(done) != 3 or max(done) < 2:
        return False, saw + ": the good cities must be retried through the 503 and the hang"
    return atlantis == [1], saw + (
        "" if atlantis == [1] else ": Atlantis's 400 must fail after one attempt, not be retried"
    )


def report_02(c: Check) -> tuple[bool, str]:
    if c.run("run")["state_type"] != "COMPLETED":
        return False, f"the run ended {state_of(c, 'run')}, so it returned nothing"
    result = c.run("run")["result"] or {}
    rows = result.get("results", []) if isinstance(result, dict) else []
    got = {r.get("city"): r.get("mean_c") for r in rows}
    attempts = sorted(r.get("attempts") for r in rows if isinstance(r.get("attempts"), int))
    counts = sorted(t["run_count"] for t in fetch_weather_runs(c) if t["state_type"] == "COMPLETED")
    want = {city: mean_c(city, range(24)) for city in CITIES_02[:3]}
    failed = list((result.get("failed") if isinstance(result, dict) else None) or [])
    return (
        got == want and failed == ["Atlantis"] and attempts == counts,
        f"means {got} (right: {want}), attempts {attempts or 'missing'} (the task runs' Run Counts: {counts}), failed {failed}",
    )


# --- 03 · Parameters --------------------------------------------------------------------------------
WINDOW_03 = {"start": "2026-01-02", "end": "2026-01-04"}


def schema_03(c: Check) -> dict[str, Any]:
    return c.step("inspect")["parameters"]


def quick_run_03(c: Check) -> tuple[bool, str]:
    schema = schema_03(c)
    return (
        not schema.get("required") and {"cities", "window"} <= set(schema.get("properties", {})),
        f"parameters {sorted(schema.get('properties', {}))}, required without a default: {schema.get('required') or 'none'}",
    )


def refuses_03(c: Check) -> tuple[bool, str]:
    from prefect.utilities.schema_tools import validate

    schema = schema_03(c)
    verdict = {
        label: not validate(values, schema)
        for label, values in {
            "cities []": {"cities": []},
            'cities ["Atlantis"]': {"cities": ["Atlantis"]},
            "five cities": {"cities": ["Berlin", "Lagos", "Lima", "Oslo", "Sydney"]},
            'cities ["Oslo"]': {"cities": ["Oslo"]},
        }.items()
    }
    right = verdict == {"cities []": False, 'cities ["Atlantis"]': False, "five cities": False, 'cities ["Oslo"]': True}
    return right, "the schema " + ", ".join(
        f"{'accepts' if ok else 'refuses'} {label}" for label, ok in verdict.items()
    )


def window_means_03(c: Check) -> tuple[bool, str]:
    rows = c.artifact("good", "weather-window")
    if rows is None:
        return False, "the run made no table artifact 'weather-window'"
    if not rows or not all({"city", "day", "mean_c"} <= set(r) for r in rows):
        return (
            False,
            f"the artifact's rows need the columns city, day and mean_c; its first row is {rows[0] if rows else 'missing'}",
        )
    got = {(r["city"], str(r["day"])[:10]): r["mean_c"] for r in rows}
    days = [date(2026, 1, 2) + timedelta(days=i) for i in range(3)]
    first = date(2026, 1, 1)
    want = {
        (city, d.isoformat()): mean_c(city, range((d - first).days * 24, (d - first).days * 24 + 24))
        for city in ("Berlin", "Oslo")
        for d in days
    }
    wrong = [
        f"{city} {day}: {got.get((city, day))} (right: {value})"
        for (city, day), value in want.items()
        if got.get((city, day)) != value
    ]
    extra = [f"{city} {day}" for city, day in sorted(set(got) - set(want), key=str) if city is not None]
    if not wrong and not extra:
        return True, f"all {len(want)} city-days right"
    return False, (
        f"{len(wrong)} of {len(want)} city-days wrong or missing, e.g. {'; '.join(wrong[:3])}" if wrong else ""
    ) + ("; " if wrong and extra else "") + (f"rows outside the window: {', '.join(extra[:4])}" if extra else "")


# --- 04 · Schedules -----------------------------------------------------------------------------------
CHECK_DEPLOYMENT_04 = "lab-check-04"


def warmest_04(c: Check) -> tuple[bool, str]:
    warmest = max(weather("Oslo", h)["temperature_c"] for h in range(6))
    logs = c.logs("run")
    said = "says so" if str(warmest) in logs else f"does not say it; its last lines: {logs[-200:]!r}"
    return str(warmest) in logs, f"Oslo's warmest of 6 hours is {warmest} °C; the run's log {said}"


def schedules(c: Check, step_id: str) -> dict[str, dict[str, Any]]:
    """The check deployment's schedules by city, as the API stores them."""
    found = {}
    for s in c.step(step_id)["deployment"]["schedules"]:
        found[(s.get("parameters") or {}).get("city", "?")] = {
            "active": s["active"],
            **{k: v for k, v in s["schedule"].items() if v is not None},
        }
    return found


def two_paused_04(c: Check) -> tuple[bool, str]:
    found = schedules(c, "deployed")
    oslo, lagos = found.get("Oslo", {}), found.get("Lagos", {})
    ok = (
        len(found) == 2
        and oslo.get("interval") == 120
        and lagos.get("cron") == "0,30 * * * *"
        and lagos.get("timezone") == "Africa/Lagos"
        and not oslo.get("active", True)
        and not lagos.get("active", True)
    )
    return ok, f"SCHEDULES deployed as {found}" if found else "the deployment made from SCHEDULES has no schedules"


def resumed_04(c: Check) -> tuple[bool, str]:
    c.step("resume")  # not checked when the call raised: say so
    found = schedules(c, "resumed")
    ok = found.get("Oslo", {}).get("active") is True and found.get("Lagos", {}).get("active") is False
    return ok, f"after set_schedule_active('Oslo', True): {found} (Oslo active, its city parameter kept, Lagos paused?)"


def paused_04(c: Check) -> tuple[bool, str]:
    c.step("pause")
    found = schedules(c, "paused")
    ok = found.get("Oslo", {}).get("active") is False and len(found) == 2
    return ok, f"after set_schedule_active('Oslo', False): {found}"


# --- 05 · Notifications ------------------------------------------------------------------------------
THRESHOLD_05 = 100.0
BIG_ORDERS_05 = sum(order(i)["amount"] > THRESHOLD_05 for i in range(1, 101))


def message_05(c: Check) -> dict[str, Any] | None:
    name = c.run("run")["api_run"]["name"]
    return next((m for m in c.inbox() if name in m["text"]), None)


def sent_05(c: Check) -> tuple[bool, str]:
    texts = [m["text"][:100] for m in c.inbox()]
    return message_05(c) is not None, (
        f"messages through the block: {texts}"
        if texts
        else "nothing arrived through the workshop-slack block (was the send awaited?)"
    )


def fails_after_sending_05(c: Check) -> tuple[bool, str]:
    name = c.run("fail")["api_run"]["name"]
    sent = any(name in m["text"] for m in c.inbox())
    return c.run("fail")["state_type"] == "FAILED" and sent, f"with fail=True the run ended {state_of(c, 'fail')}; " + (
        "its message arrived first" if sent else "its own message never arrived"
    )


def count_05(c: Check) -> tuple[bool, str]:
    message = message_05(c)
    if message is None:
        return False, "no message to read"
    return re.search(
        rf"\b{BIG_ORDERS_05}\b", message["text"]
    ) is not None, f"{message['text'][:120]!r} (right: {BIG_ORDERS_05} orders above {THRESHOLD_05:g})"


# --- 06 · Async -----------------------------------------------------------------------------------------
PAGES_06, IN_FLIGHT_06 = 8, 4


def pages_06(c: Check) -> list[dict[str, Any]]:
    return sorted(
        (
            t
            for t in c.task_runs("run")
            if t["task_key"].startswith("fetch_page") or t["name"].startswith(("fetch_page", "page-"))
        ),
        key=lambda t: t["start_time"] or "",
    )


def all_orders_06(c: Check) -> tuple[bool, str]:
    result = c.run("run")["result"]
    orders = result.get("orders") if isinstance(result, dict) else result
    return (
        orders == PAGES_06 * 250,
        f"the run returned {orders!r} orders (right: {PAGES_06 * 250}); it ended {state_of(c, 'run')}",
    )


def retried_06(c: Check) -> tuple[bool, str]:
    runs = pages_06(c)
    counts = Counter(t["run_count"] for t in runs)
    return len(runs) >= PAGES_06 and max(
        counts, default=0
    ) > 1, f"{len(runs)} fetch_page task runs, by attempts {dict(sorted(counts.items()))}"


def concurrent_06(c: Check) -> tuple[bool, str]:
    peak = most_in_flight(pages_06(c))
    return peak > 1, f"at most {peak} page task run(s) in flight at once over the whole run"


def limited_06(c: Check) -> tuple[bool, str]:
    runs = pages_06(c)
    if len(runs) < 2 * PAGES_06:
        return False, (
            f"the run made {len(runs)} fetch_page task runs; the limited variant's {PAGES_06} "
            f"(after the unlimited variant's {PAGES_06}) are not there"
        )
    peak = most_in_flight(runs[-PAGES_06:])
    return peak <= IN_FLIGHT_06, f"the last {PAGES_06} page task runs: at most {peak} in flight at once"


# --- 07 · Caching and secrets --------------------------------------------------------------------------
CITIES_07 = ["Berlin", "Oslo"]
SECRET_07 = "workshop-webhook-url"


def cached(c: Check, step_id: str) -> int:
    return sum(t["state_name"] == "Cached" for t in c.task_runs(step_id))


def cache_options_07(c: Check) -> tuple[bool, str]:
    found = c.step("task")
    policy, expiration = found["cache_policy"], found["cache_expiration"]
    right = "TaskSource" in policy and "Inputs" in policy and "RunId" not in policy
    said = (
        "Prefect's default policy (its RUN_ID part: no cache hit from one run to the next)"
        if "RunId" in policy
        else "INPUTS + TASK_SOURCE"
        if right
        else policy[:80]
    )
    return right and expiration == 600, (
        f"mean_temperature caches with {said}, "
        f"expiring after {f'{expiration:g} s' if expiration else 'never'} (right: INPUTS + TASK_SOURCE, 600 s)"
    )


def refreshed_07(c: Check) -> tuple[bool, str]:
    run, hits, made = c.run("refresh"), cached(c, "refresh"), requests_made(c, "refresh")
    return run["state_type"] == "COMPLETED" and hits == 0 and made >= len(
        CITIES_07
    ), f"refresh=True: ended {state_of(c, 'refresh')}, {hits} task run(s) Cached, {made} request(s) to the upstream"


def from_cache_07(c: Check) -> tuple[bool, str]:
    hits, made = cached(c, "again"), requests_made(c, "again")
    return (
        c.run("again")["state_type"] == "COMPLETED" and hits == len(CITIES_07) and made == 0,
        f"the run after it: ended {state_of(c, 'again')}, {hits} task run(s) Cached, {made} request(s) to the upstream",
    )


def posted_07(c: Check) -> tuple[bool, str]:
    texts = [m["text"] for m in c.inbox()]
    ok = len(texts) == 2 and all(city in t for t in texts for city in CITIES_07)
    if not texts:
        return (
            False,
            "nothing arrived at the URL the check stored in the Secret block (load it with Secret.load(...).get() and post to it)",
        )
    return (
        ok,
        f"{len(texts)} digest(s) arrived at the URL in the Secret block (right: 2, one per run, naming {' and '.join(CITIES_07)}): {[t[:80] for t in texts]}",
    )


def secret_kept_07(c: Check) -> tuple[bool, str]:
    seen, looked = [], []
    if "/hooks/" in c.file.read_text():
        seen.append("your file (it has a /hooks/ URL: load the URL from the Secret block instead)")
    for step in ("refresh", "again"):
        if c.results.get(step, {}).get("ok"):
            looked.append(step)
            if c.channel in c.logs(step):
                seen.append(f"the logs of {c.steps_by_id[step]['what']}")
            if c.channel in str(c.run(step)["api_run"]["parameters"]):
                seen.append(f"the parameters of {c.steps_by_id[step]['what']}")
    if seen:
        return False, f"the webhook URL is in {'; and in '.join(seen)}"
    if not looked:
        c.step("refresh")  # no run to look at: say why
    runs = " and ".join(c.steps_by_id[step]["what"] for step in looked)
    return len(
        looked
    ) == 2, f"no /hooks/ URL in your file, and the check's URL in no log line or parameter of {runs}" + (
        "" if len(looked) == 2 else f" (not checked on {c.steps_by_id['refresh']['what']}: it could not start)"
    )


# --- 08 · Dask -----------------------------------------------------------------------------------------------
CUSTOMERS_08, BATCHES_08 = 200, 4


def on_dask_08(c: Check) -> tuple[bool, str]:
    found = c.step("inspect")
    want = c.env["DASK_SCHEDULER_ADDRESS"]
    return found["task_runner"] == "DaskTaskRunner" and found[
        "address"
    ] == want, f"score-in-batches runs on {found['task_runner']} at {found['address']} (the lab's scheduler: {want})"


def batches_08(c: Check) -> tuple[bool, str]:
    runs = c.task_runs("batches")
    return (
        c.run("batches")["state_type"] == "COMPLETED" and len(runs) == BATCHES_08,
        f"{CUSTOMERS_08} customers in {BATCHES_08} batches: ended {state_of(c, 'batches')} with {len(runs)} task run(s)",
    )


def fanned_out_08(c: Check) -> tuple[bool, str]:
    runs = c.task_runs("fanned")
    return c.run("fanned")["state_type"] == "COMPLETED" and len(
        runs
    ) == 1, f"ended {state_of(c, 'fanned')} with {len(runs)} task run(s)"


def same_score_08(c: Check) -> tuple[bool, str]:
    a, b = c.run("batches")["result"], c.run("fanned")["result"]
    return isinstance(a, int) and a == b and a > 0, f"total scores: batches {a}, fanned out {b}"


# --- 09 · Docker and packaging ----------------------------------------------------------------------------
def refuses_09(c: Check) -> tuple[bool, str]:
    run = c.run("default")
    return run["state_type"] == "FAILED" and "lab-toolkit" in run[
        "message"
    ], f"on the lab's venv (no lab-toolkit) the run ended {state_of(c, 'default')}"


def reports_09(c: Check) -> tuple[bool, str]:
    from importlib.metadata import version

    report = c.artifact("nothing-required", "package-audit")
    if report is None:
        return False, f"the run ended {state_of(c, 'nothing-required')} without a 'package-audit' artifact"
    want = {"prefect": version("prefect"), "distributed": version("distributed"), "lab-toolkit": "not installed"}
    missing = {
        name: v for name, v in want.items() if not re.search(rf"{re.escape(name)}\W+{re.escape(v)}", str(report))
    }
    return c.run("nothing-required")[
        "state_type"
    ] == "COMPLETED" and not missing, f"required=[]: ended {state_of(c, 'nothing-required')}; " + (
        f"the report lacks {missing}" if missing else f"the report says {want}"
    )


# --- 10 · Subflows ----------------------------------------------------------------------------------------
CITIES_10 = ["Berlin", "Oslo"]


def children_10(c: Check) -> list[dict[str, Any]]:
    result = c.run("run")
    if "children" not in result:
        parents = [t["id"] for t in c.task_runs("run")]
        result["children"] = (
            c.post("/flow_runs/filter", {"flow_runs": {"parent_task_run_id": {"any_": parents}}, "limit": 200})
            if parents
            else []
        )
    return result["children"]


def deployed_children_10(c: Check) -> tuple[bool, str]:
    kids = [k for k in children_10(c) if k["deployment_id"]]
    states = Counter(k["state_type"] for k in kids)
    cities = sorted(k["parameters"].get("city", "?") for k in kids)
    if not kids:
        return (
            False,
            "no city-weather deployment run is a child of this run (start them with arun_deployment in the flow)",
        )
    return cities == sorted(CITIES_10) and states == Counter(
        {"COMPLETED": len(CITIES_10)}
    ), f"deployment children for {cities}, {dict(states)}"


def at_once_10(c: Check) -> tuple[bool, str]:
    kids = [k for k in children_10(c) if k["deployment_id"]]
    if len(kids) < 2:
        return False, f"{len(kids)} deployment child run(s)"
    last_start, first_end = max(k["created"] for k in kids), min(k["end_time"] or "9" for k in kids)
    return last_start < first_end, f"last child created {last_start[11:23]}, first child finished {first_end[11:23]}"


def ranked_10(c: Check) -> tuple[bool, str]:
    subflows = [k for k in children_10(c) if not k["deployment_id"]]
    names = [c.get(f"/flows/{k['flow_id']}")["name"] for k in subflows]
    runs = [c.run("run")["flow_run_id"], *(k["id"] for k in subflows)]  # the subflow's run makes it, or the parent
    found = c.post(
        "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": runs}, "key": {"any_": ["weather-ranking"]}}}
    )
    ranking = (json.loads(found[0]["data"]) if isinstance(found[0]["data"], str) else found[0]["data"]) if found else []
    means = [r.get("mean_c") for r in ranking]
    ok = (
        names == ["rank-cities"]
        and sorted(r.get("city") for r in ranking) == sorted(CITIES_10)
        and means == sorted(means, reverse=True)
    )
    return (
        ok,
        f"subflows {names}; 'weather-ranking' rows {[(r.get('rank'), r.get('city'), r.get('mean_c')) for r in ranking] or 'none'}",
    )


# --- 11 · Breaking the DAG ---------------------------------------------------------------------------
CHECKS_11 = ("missing_email", "bad_country", "signup_in_future")


def clean_11(c: Check) -> tuple[bool, str]:
    names = [t["name"] for t in c.task_runs("clean")]
    checks = [n for n in CHECKS_11 if named(c.task_runs("clean"), n)]
    pages = requests_made(c, "clean")
    ok = (
        c.run("clean")["result"] == "publish"
        and checks == list(CHECKS_11)
        and pages == 5
        and named(c.task_runs("clean"), "publish")
    )
    return (
        bool(ok),
        f"clean upstream: returned {c.run('clean')['result']!r}, {pages} page request(s) (right: 5 of 120), check tasks {checks}, publish task {'yes' if named(c.task_runs('clean'), 'publish') else 'no'} ({len(names)} task runs)",
    )


def dirty_11(c: Check) -> tuple[bool, str]:
    quarantines = named(c.task_runs("dirty"), "quarantine")
    keys = sorted(a["key"] for a in c.artifacts("dirty") if (a["key"] or "").startswith("quarantine-"))
    ok = (
        c.run("dirty")["result"] == "quarantine"
        and quarantines
        and len(quarantines) == len(keys)
        and not named(c.task_runs("dirty"), "publish")
    )
    return (
        bool(ok),
        f"20% malformed: returned {c.run('dirty')['result']!r}, {len(quarantines)} quarantine task run(s), artifacts {keys}",
    )


# --- 12 · Workflow analytics ----------------------------------------------------------------------
WATERMARK_12 = "workflow-history-watermark"


def scratch_warehouse(c: Check, name: str = "warehouse") -> str:
    return str(c.scratch / name / "warehouse.duckdb")


def first_load_12(c: Check) -> tuple[bool, str]:
    loaded = c.run("first")["result"]
    with duckdb.connect(scratch_warehouse(c), read_only=True) as con:
        rows = con.execute("select count(*) from prefect_history.flow_runs").fetchone()[0]
    return (
        c.run("first")["state_type"] == "COMPLETED" and isinstance(loaded, int) and loaded > 0,
        f"first increment: ended {state_of(c, 'first')}, loaded {loaded!r}; the table has {rows} flow runs",
    )


def watermark_12(c: Check) -> tuple[bool, str]:
    value = c.step("watermark")["value"]
    return isinstance(value, str) and bool(re.match(r"\d{4}-\d\d-\d\dT", value)), (
        f"the Variable {WATERMARK_12!r} holds {value!r}"
        if value is not None
        else f"the Variable {WATERMARK_12!r} is not set after the two runs"
    )


def incremental_12(c: Check) -> tuple[bool, str]:
    first, second = c.run("first")["result"], c.run("second")["result"]
    return isinstance(second, int) and second <= 5 and isinstance(
        first, int
    ) and first > second, f"the second increment loaded {second!r} flow runs (the first {first!r})"


def hotspots_12(c: Check) -> tuple[bool, str]:
    table = c.artifact("second", "retry-hotspots")
    return isinstance(table, list) and bool(
        table
    ), f"'retry-hotspots': {str(table)[:160] if table is not None else 'no such artifact'}"


# --- 13 · ELT ----------------------------------------------------------------------------------------------
LAYERS_13 = {"users": (30, 28, 2), "products": (10, 10, 0), "purchases": (40, 37, 3)}


def build_warehouses_13(c: Check) -> None:
    """Two small warehouses in the real layout (raw file beside the warehouse): one that
    reconciles, and one where a staged purchase went missing."""
    for name, lost in (("good", 0), ("bad", 1)):
        folder = c.scratch / name
        folder.mkdir()
        with (
            duckdb.connect(str(folder / "airbyte_raw.duckdb")) as raw,
            duckdb.connect(str(folder / "warehouse.duckdb")) as wh,
        ):
            raw.execute("create schema raw")
            wh.execute("create schema staging; create schema quarantine")
            wh.execute("create table quarantine.quarantined_records (stream varchar, raw_id varchar, reason varchar)")
            for stream, (rows, staged, quarantined) in LAYERS_13.items():
                raw.execute(
                    f"create table raw.{stream} as select i as id, uuid()::varchar as _airbyte_raw_id from range({rows}) t(i)"
                )
                staged -= lost if stream == "purchases" else 0
                wh.execute(f"create table staging.stg_{stream} as select i as id from range({staged}) t(i)")
                wh.execute(
                    f"insert into quarantine.quarantined_records select '{stream}', uuid()::varchar, 'a bad value' from range({quarantined})"
                )


def audit_13(c: Check) -> tuple[bool, str]:
    rows = c.artifact("good", "elt-audit")
    if rows is None:
        return False, f"the run ended {state_of(c, 'good')} without a table artifact 'elt-audit'"
    got = {r["stream"]: (int(r["raw"]), int(r["staged"]), int(r["quarantined"])) for r in rows}
    return (
        c.run("good")["state_type"] == "COMPLETED" and got == LAYERS_13,
        f"ended {state_of(c, 'good')}; (raw, staged, quarantined) {got} (right: {LAYERS_13})",
    )


def fails_on_loss_13(c: Check) -> tuple[bool, str]:
    run = c.run("bad")
    return run["state_type"] == "FAILED" and "purchases" in run["message"] and "users" not in run[
        "message"
    ], f"with one staged purchase missing, the run ended {state_of(c, 'bad')}"


def steps_13(c: Check) -> list[dict[str, Any]]:
    return [
        {**run(name, "elt-audit"), "env": {"LAB_WAREHOUSE_PATH": scratch_warehouse(c, name)}}
        for name in ("good", "bad")
    ]


# --- 15 · Resources going down --------------------------------------------------------------------
BATCH_15, CRASH_BATCH_15 = 100, 3
KEPT_15 = list(range(1, (CRASH_BATCH_15 - 1) * BATCH_15 + 1))  # batches 1 and 2: committed before the crash
TABLE_15 = "exercise.customers"


def steps_15(c: Check) -> list[dict[str, Any]]:
    """Run the load with the simulated crash in a process of its own (it dies there), look at what it
    left, then run it again to the end: all on a scratch warehouse of the check's own."""
    env = {"LAB_WAREHOUSE_PATH": scratch_warehouse(c)}
    crash = run("crash", "load-customers", batch_size=BATCH_15, crash_in_batch=CRASH_BATCH_15)
    return [
        chaos("calm"),
        {"id": "crash", "do": "child", "step": crash, "env": env, "what": crash["what"]},
        {
            "id": "after-crash",
            "do": "sql",
            "query": f"select customer_id from {TABLE_15}",
            "env": env,
            "what": f"reading {TABLE_15} after the crash",
        },
        {**run("rerun", "load-customers", batch_size=BATCH_15), "env": env},
        {"id": "stats", "do": "stats"},
        RESTORE_CHAOS,
    ]


def spans(ids: list[int]) -> str:
    """Customer ids as ranges: "1-200", "1-250 (some twice)", "none"."""
    if not ids:
        return "none"
    unique = sorted(set(ids))
    runs, start = [], unique[0]
    for previous, current in zip(unique, unique[1:] + [None], strict=False):
        if current != previous + 1:
            runs.append(f"{start}-{previous}" if previous != start else str(start))
            start = current
    return ", ".join(runs[:4]) + (" ..." if len(runs) > 4 else "")


def killed_15(c: Check) -> tuple[bool, str]:
    child = c.step("crash")
    if child["signal"] == "SIGKILL":
        return True, f"its process was killed (SIGKILL) in batch {CRASH_BATCH_15}, as a crashed worker's would be"
    result = child["result"]
    if result and result.get("ok") and child["returncode"] == 0:
        return False, (
            f"the run ended {result['state_type']} and its process lived: keep the call crash_midway(crash, written, records) "
            "inside load_batch's loop, after a row is written and before the commit"
        )
    why = (result or {}).get("error") or child["stderr_tail"] or f"exit {child['returncode']}"
    return False, f"its process ended with exit {child['returncode']} before the simulated crash: {why}"


def whole_batches_15(c: Check) -> tuple[bool, str]:
    if c.step("crash")["signal"] != "SIGKILL":
        raise NotChecked(f"not checked: the process did not die in batch {CRASH_BATCH_15} (see above)")
    ids = [row[0] for row in c.step("after-crash")["rows"]]
    ok = sorted(ids) == KEPT_15
    saw = f"after the crash {TABLE_15} has {len(ids)} rows, customers {spans(ids)} (right: {len(KEPT_15)}, customers {spans(KEPT_15)})"
    partial = [i for i in ids if i > KEPT_15[-1]]
    if partial:
        saw += (
            f": {len(set(partial))} of batch {CRASH_BATCH_15}'s rows stayed behind. Write each batch in one transaction "
            "(begin ... commit), so a process that dies before the commit leaves none of it"
        )
    elif len(ids) < len(KEPT_15):
        saw += ": batches committed before the crash are missing (commit after each batch, not once at the end)"
    return ok, saw


def once_each_15(c: Check) -> tuple[bool, str]:
    run_15 = c.run("rerun")
    if run_15["state_type"] != "COMPLETED":
        return False, f"not checked: the run after the crash ended {state_of(c, 'rerun')}"
    with duckdb.connect(scratch_warehouse(c), read_only=True) as con:
        rows = con.execute(f"select customer_id, name, email, country, signed_up_at from {TABLE_15}").fetchall()
    ids = [r[0] for r in rows]
    twice = len(ids) - len(set(ids))
    served = c.step("stats")["stats"]["records"]
    saw = (
        f"{len(ids)} rows for {len(set(ids))} distinct customer_ids (the upstream has {CUSTOMERS}; over both runs it served "
        f"{served} records, some of them twice)"
    )
    if twice:
        return False, saw + (
            f": {twice} customers have two rows: the run after the crash inserted again what the crashed run "
            "had loaded. Merge on customer_id (a primary key and insert or replace)"
        )
    if sorted(ids) != list(range(1, CUSTOMERS + 1)):
        return False, saw + f": customers {spans(sorted(set(range(1, CUSTOMERS + 1)) - set(ids)))} are missing"
    wrong = [
        r[0]
        for r in rows
        if tuple(str(v) for v in r[1:])
        != tuple(str(customer(r[0])[k]) for k in ("name", "email", "country", "signed_up_at"))
    ]
    if wrong:
        return False, saw + f": {len(wrong)} rows differ from the upstream's record, e.g. customer {wrong[0]}"
    return run_15[
        "result"
    ] == CUSTOMERS, saw + f"; every one once, with the upstream's values; the run returned {run_15['result']!r} fetched"


EXERCISES: dict[str, Exercise] = {
    e.number: e
    for e in [
        Exercise(
            "00",
            "hello_lab",
            lambda c: [{"id": "workers", "do": "dask_workers"}, run("run", "hello-squares", items=ITEMS_00)],
            [
                R(f"hello-squares(items={ITEMS_00}) COMPLETES", ends("run")),
                R("one task run per item, all COMPLETED", hello_tasks),
                R("a table artifact 'hello-squares' with each item's square", hello_squares_right),
                R("every task ran on one of the lab's Dask workers", hello_on_dask),
            ],
        ),
        Exercise(
            "01",
            "negative_engineering",
            lambda c: [
                chaos("chaos", fail_next=3, malformed_rate=0.05, seed=11),
                run("run", "customer-countries"),
                {"id": "stats", "do": "stats"},
                RESTORE_CHAOS,
            ],
            [
                R("customer-countries COMPLETES through fail_next 3 and 5% malformed records", ends("run")),
                R("a fetch_customers_page task retried through the 503s", retried_01),
                R("kept + quarantined = the upstream's 500 customers", reconciles_01),
                R("exactly the records the upstream broke are quarantined, each with a reason", quarantine_matches_01),
            ],
        ),
        Exercise(
            "02",
            "retries",
            lambda c: [
                {"id": "task", "do": "inspect_task", "task": "fetch_weather", "what": "reading the task fetch_weather"},
                chaos("chaos", **CHAOS_02),
                run("run", "weather-retries", cities=CITIES_02),
                {"id": "stats", "do": "stats"},
                RESTORE_CHAOS,
            ],
            [
                R("1. a request that hangs fails fast (a 1 s HTTP timeout) and is retried", timeout_02),
                R(
                    "2. retries with exponential backoff and jitter, under about 5 s of waiting, and a retry_condition_fn",
                    backoff_02,
                ),
                R(
                    "2./3. the 503 and the timeout were retried, Atlantis's 400 was not (one attempt)",
                    retried_not_atlantis_02,
                ),
                R(
                    "3. weather-retries COMPLETES, returns each good city's mean and attempts, and names Atlantis as failed",
                    report_02,
                ),
            ],
        ),
        Exercise(
            "03",
            "parameters",
            lambda c: [
                {"id": "inspect", "do": "inspect", "flow": "weather-window"},
                run("good", "weather-window", cities=["Berlin", "Oslo"], window=WINDOW_03),
                run(
                    "backwards",
                    "weather-window",
                    cities=["Berlin"],
                    window={"start": "2026-01-05", "end": "2026-01-02"},
                ),
            ],
            [
                R("every parameter has a default (a Quick run works)", quick_run_03),
                R("the parameter schema refuses no city, an unknown city and five cities", refuses_03),
                R("Berlin and Oslo from 2026-01-02 to 01-04: the right daily means, no day outside", window_means_03),
                R("a window whose start is after its end fails the run as it starts", ends("backwards", "FAILED")),
            ],
        ),
        Exercise(
            "04",
            "schedules",
            lambda c: [
                run("run", "weather-watch", city="Oslo", hours=6),
                {"id": "cleanup", "do": "delete_deployment", "name": f"weather-watch/{CHECK_DEPLOYMENT_04}"},
                {
                    "id": "deploy",
                    "do": "deploy",
                    "flow": "weather-watch",
                    "name": CHECK_DEPLOYMENT_04,
                    "schedules": "SCHEDULES",
                    "what": "deploying weather-watch with the file's SCHEDULES",
                },
                {
                    "id": "deployed",
                    "do": "read_deployment",
                    "name": f"weather-watch/{CHECK_DEPLOYMENT_04}",
                    "what": "reading back the deployment of SCHEDULES",
                },
                {
                    "id": "resume",
                    "do": "call",
                    "function": "set_schedule_active",
                    "args": ["Oslo", True],
                    "kwargs": {"deployment": f"weather-watch/{CHECK_DEPLOYMENT_04}"},
                    "what": "the call set_schedule_active('Oslo', True)",
                },
                {"id": "resumed", "do": "read_deployment", "name": f"weather-watch/{CHECK_DEPLOYMENT_04}"},
                {
                    "id": "pause",
                    "do": "call",
                    "function": "set_schedule_active",
                    "args": ["Oslo", False],
                    "kwargs": {"deployment": f"weather-watch/{CHECK_DEPLOYMENT_04}"},
                    "what": "the call set_schedule_active('Oslo', False)",
                },
                {"id": "paused", "do": "read_deployment", "name": f"weather-watch/{CHECK_DEPLOYMENT_04}"},
                {"id": "delete", "do": "delete_deployment", "name": f"weather-watch/{CHECK_DEPLOYMENT_04}"},
            ],
            [
                R("weather-watch(Oslo, 6 hours) COMPLETES", ends("run")),
                R("it logs Oslo's warmest hour", warmest_04),
                R(
                    "SCHEDULES: every 120 s for Oslo, 0,30 * * * * in Africa/Lagos for Lagos, both paused",
                    two_paused_04,
                ),
                R("set_schedule_active resumes Oslo's schedule through the API", resumed_04),
                R("... and pauses it again", paused_04),
            ],
        ),
        Exercise(
            "05",
            "notifications",
            lambda c: [
                {"id": "block", "do": "slack_url", "name": "workshop-slack", "url": f"{c.inbox_url}/hooks/{c.channel}"},
                run("run", "big-orders", threshold=THRESHOLD_05),
                run("fail", "big-orders", threshold=THRESHOLD_05, fail=True),
                {"id": "restore-block", "do": "slack_url", "name": "workshop-slack", "restore": True},
            ],
            [
                R(f"big-orders(threshold={THRESHOLD_05:g}) COMPLETES", ends("run")),
                R("its message, naming the flow run, arrived through the workshop-slack block", sent_05),
                R("the message says how many orders on page 1 are above the threshold", count_05),
                R("with fail=True the run sends its message, then FAILS", fails_after_sending_05),
            ],
        ),
        Exercise(
            "06",
            "async",
            lambda c: [
                chaos("chaos", failure_rate=0.2, seed=5),
                run("run", "async-orders", pages=PAGES_06, latency_ms=200, max_in_flight=IN_FLIGHT_06),
                RESTORE_CHAOS,
            ],
            [
                R(f"async-orders({PAGES_06} pages) at failure_rate 0.2 gets every order", all_orders_06),
                R("every page is an async fetch_page task run, and retries healed the 503s", retried_06),
                R("pages were fetched concurrently", concurrent_06),
                R(f"the limited variant never has more than {IN_FLIGHT_06} pages in flight", limited_06),
            ],
        ),
        Exercise(
            "07",
            "caching_and_secrets",
            lambda c: [
                {
                    "id": "task",
                    "do": "inspect_task",
                    "task": "mean_temperature",
                    "what": "reading the task mean_temperature",
                },
                {"id": "secret", "do": "secret", "name": SECRET_07, "value": f"{c.inbox_url}/hooks/{c.channel}"},
                run("refresh", "cached-weather-digest", cities=CITIES_07, refresh=True),
                run("again", "cached-weather-digest", cities=CITIES_07),
                {"id": "restore-secret", "do": "secret", "name": SECRET_07, "restore": True},
            ],
            [
                R("1. the weather task caches on INPUTS + TASK_SOURCE for 10 minutes", cache_options_07),
                R(
                    "1. after a run, the next takes the weather from the cache: no request to the upstream",
                    from_cache_07,
                ),
                R("2. refresh=True ignores the cache and fetches", refreshed_07),
                R(f"4. each run posts its digest to the URL in the Secret block {SECRET_07!r}", posted_07),
                R("4. the webhook URL stays out of the code, the parameters and the logs", secret_kept_07),
            ],
        ),
        Exercise(
            "08",
            "dask",
            lambda c: [
                {"id": "inspect", "do": "inspect", "flow": "score-in-batches"},
                run("batches", "score-in-batches", customers=CUSTOMERS_08, batches=BATCHES_08),
                run("fanned", "score-with-dask-client", customers=CUSTOMERS_08),
            ],
            [
                R("score-in-batches runs on the lab's Dask cluster", on_dask_08),
                R("score-in-batches makes one task run per batch", batches_08),
                R("score-with-dask-client is one task run, Dask doing the fan-out", fanned_out_08),
                R("both designs give the same total score", same_score_08),
            ],
        ),
        Exercise(
            "09",
            "docker_packaging",
            lambda c: [run("default", "package-audit"), run("nothing-required", "package-audit", required=[])],
            [
                R("where lab-toolkit is not installed, package-audit FAILS and names it", refuses_09),
                R("with nothing required it COMPLETES and reports the versions installed here", reports_09),
            ],
        ),
        Exercise(
            "10",
            "subflows",
            lambda c: [run("run", "weather-ranking", cities=CITIES_10)],
            [
                R(f"weather-ranking({CITIES_10}) COMPLETES", ends("run")),
                R(
                    "one city-weather deployment run per city, children of this run, all COMPLETED",
                    deployed_children_10,
                ),
                R("the children were started at once", at_once_10),
                R("the subflow rank-cities publishes 'weather-ranking', warmest first", ranked_10),
            ],
        ),
        Exercise(
            "11",
            "breaking_the_dag",
            lambda c: [
                chaos("calm"),
                run("clean", "quality-gate", page_size=120, max_bad_share=0.01),
                chaos("chaos", malformed_rate=0.2, seed=3),
                run("dirty", "quality-gate", page_size=120, max_bad_share=0.01),
                RESTORE_CHAOS,
            ],
            [
                R("clean: pages until a short page, one task per check, then publish", clean_11),
                R("20% malformed: one quarantine task and artifact per failing check, no publish", dirty_11),
            ],
        ),
        Exercise(
            "12",
            "workflow_analytics",
            lambda c: [
                {"id": "unset", "do": "variable", "name": WATERMARK_12, "unset": True},
                {
                    **run("history", "workflow-analytics"),
                    "file": str(FLOWS_DIR / "12_workflow_analytics.py"),
                    "env": {"LAB_WAREHOUSE_PATH": scratch_warehouse(c)},
                },
                {**run("first", "history-increment"), "env": {"LAB_WAREHOUSE_PATH": scratch_warehouse(c)}},
                {**run("second", "history-increment"), "env": {"LAB_WAREHOUSE_PATH": scratch_warehouse(c)}},
                {"id": "watermark", "do": "variable", "name": WATERMARK_12},
                {"id": "restore", "do": "variable", "name": WATERMARK_12, "restore": True},
            ],
            [
                R("the first increment loads the flow runs into prefect_history.flow_runs", first_load_12),
                R(f"the watermark is kept in the Variable {WATERMARK_12!r}", watermark_12),
                R("the second increment loads (almost) nothing", incremental_12),
                R("it publishes the retry hotspots as 'retry-hotspots'", hotspots_12),
            ],
        ),
        Exercise(
            "13",
            "elt",
            steps_13,
            [
                R(
                    "on a warehouse that reconciles, elt-audit COMPLETES with each stream's raw, staged and quarantined rows",
                    audit_13,
                ),
                R("when a staged row is lost, the run FAILS naming that stream", fails_on_loss_13),
            ],
            prepare=build_warehouses_13,
        ),
        Exercise(
            "15",
            "resources_going_down",
            steps_15,
            [
                R(
                    f"with crash_in_batch={CRASH_BATCH_15}, the process dies halfway through batch {CRASH_BATCH_15} (the check's simulated crash)",
                    killed_15,
                ),
                R("the crash leaves whole batches: batches 1 and 2, nothing of batch 3", whole_batches_15),
                R("load-customers, run again after the crash, COMPLETES", ends("rerun")),
                R(f"afterwards every customer is in {TABLE_15} exactly once, as the upstream serves it", once_each_15),
            ],
        ),
    ]
}
