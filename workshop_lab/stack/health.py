"""Health checks of the embedded lab's services: the endpoints the compose healthchecks probe.

Standard library only: `setup_lab` and `launch` call these before Prefect is even imported.
Each check returns a one-line description, or raises `Unhealthy` saying what is wrong.
"""

from __future__ import annotations

import json
import time

from workshop_lab.stack.settings import WORK_POOL

TIMEOUT_SECONDS = 3.0


class Unhealthy(Exception):
    """The service answered wrongly or not at all."""


def wait_until_healthy(api_url: str, timeout: float = 180) -> None:
    """Block until the Prefect server answers healthy; SystemExit with the reason after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            check_prefect_server(api_url)
            return
        except Unhealthy as exc:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"the Prefect server at {api_url} did not become healthy in {timeout:.0f}s: {exc}"
                ) from None
            time.sleep(0.25)


def _request(url: str, body: dict | None = None) -> bytes:
    # Imported here: every process of the lab's venv imports this module at start-up (through
    # workshop_lab/stack/shell.py), and urllib.request alone costs about 20 ms there.
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise Unhealthy(f"{url} answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unhealthy(f"{url} did not answer: {reason}") from exc


def check_url(url: str) -> str:
    """Any 2xx answer."""
    _request(url)
    return f"{url} answered"


def check_prefect_server(api_url: str) -> str:
    """The API answers `true` on /health."""
    body = _request(f"{api_url}/health").strip()
    if body != b"true":
        raise Unhealthy(f"{api_url}/health answered {body[:80]!r}, not true")
    return "Prefect API healthy"


def online_workers(api_url: str, pool: str = WORK_POOL) -> list[str]:
    body = _request(f"{api_url}/work_pools/{pool}/workers/filter", {"limit": 50})
    return sorted(w["name"] for w in json.loads(body) if w.get("status") == "ONLINE")


def check_prefect_worker(api_url: str, name: str | None = None) -> str:
    """A worker is polling the `workshop` pool (the one named `name`, if given)."""
    workers = online_workers(api_url)
    if name is not None and name not in workers:
        raise Unhealthy(f"worker {name!r} is not online in pool {WORK_POOL!r} (online: {workers or 'none'})")
    if not workers:
        raise Unhealthy(f"no worker is online in pool {WORK_POOL!r}")
    return f"{len(workers)} worker(s) online in pool {WORK_POOL!r}"


def check_dask_scheduler(dashboard_url: str) -> str:
    body = _request(f"{dashboard_url}/health").strip()
    if body != b"ok":
        raise Unhealthy(f"{dashboard_url}/health answered {body[:80]!r}, not ok")
    return "Dask scheduler healthy"


def check_dask_workers(dashboard_url: str, expected: int) -> str:
    """The scheduler sees at least `expected` workers."""
    # counts.json, not identity.json: identity fails to encode (HTTP 200, empty body) while
    # workers report metrics keyed by tuples, as they do during and after task runs.
    workers = json.loads(_request(f"{dashboard_url}/json/counts.json"))["workers"]
    if workers < expected:
        raise Unhealthy(f"the Dask scheduler sees {workers} of {expected} workers")
    return f"{workers} Dask worker(s) connected"
