"""Health checks of the lab's services, shared by the embedded lab and the compose healthchecks.

Standard library only, so a check costs a few milliseconds and works in any lab process:

    python -m workshop_lab.health prefect-server [API_URL]
    python -m workshop_lab.health prefect-worker [API_URL]
    python -m workshop_lab.health dask-scheduler [DASHBOARD_URL]
    python -m workshop_lab.health dask-workers N [DASHBOARD_URL]
    python -m workshop_lab.health url URL

Exit status 0 means healthy; otherwise one line on stderr says what is wrong.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request

from workshop_lab.settings import WORK_POOL

TIMEOUT_SECONDS = 3.0


class Unhealthy(Exception):
    """The service answered wrongly or not at all."""


def _request(url: str, body: dict | None = None) -> bytes:
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


def main(argv: list[str]) -> int:
    api_url = os.environ.get("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    usage = __doc__ or ""
    try:
        match argv:
            case ["prefect-server", *rest]:
                message = check_prefect_server(rest[0] if rest else api_url)
            case ["prefect-worker", *rest]:
                message = check_prefect_worker(rest[0] if rest else api_url, os.environ.get("LAB_WORKER_NAME"))
            case ["dask-scheduler", *rest]:
                message = check_dask_scheduler(rest[0] if rest else "http://127.0.0.1:8787")
            case ["dask-workers", count, *rest]:
                message = check_dask_workers(rest[0] if rest else "http://127.0.0.1:8787", int(count))
            case ["url", url]:
                message = check_url(url)
            case _:
                print(usage, file=sys.stderr)
                return 2
    except Unhealthy as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
