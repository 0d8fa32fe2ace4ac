"""
# 14 · Orchestrating the Airbyte platform: trigger a sync, wait for its job

What you will learn
- When Airbyte runs as a platform (its own server, scheduler and workers), Prefect does not run the
  connectors itself, as flows/13_elt.py does (the connector's records straight into DuckDB, by the
  lab's loader): it asks Airbyte to, through Airbyte's public API, and watches the job. Airbyte
  keeps the connection, its state and its logs; Prefect keeps the schedule, the retries and the
  place of the sync in a larger pipeline (dbt after it).
- Two tasks, two retry policies. Triggering a sync is one quick API call: retried a few times on
  transient errors. Waiting is a long poll: its own timeout, and no retry when the job *failed*,
  because a retry would only poll the same failed job again. Start a new sync for that.
- Credentials stay in the environment: basic auth for the docker compose release
  (AIRBYTE_USERNAME / AIRBYTE_PASSWORD), client credentials for abctl installs
  (AIRBYTE_CLIENT_ID / AIRBYTE_CLIENT_SECRET). The client is workshop_lab/flow_tools/airbyte_api.py.

How to run it
- Start the platform and create the connection once (docs/airbyte-platform.md; about 8 GB of memory
  for Docker, several minutes on the first start):
      docker compose --profile airbyte up --wait
      .venv/bin/python -m workshop_lab.airbyte_platform bootstrap
- Then: `./lab run airbyte-platform-sync/airbyte-platform-sync`, or as a plain script against the
  lab's server: `.venv/bin/python flows/14_airbyte_platform.py`
- The job shows in both UIs: Prefect's run page (the tasks' logs) and Airbyte's at
  http://localhost:8000 (Connections > faker-to-warehouse > Job history).

Walkthrough
1. Find the connection by name and trigger its sync.
2. Poll the job until it succeeds, fails or runs out of time.
3. The flow: the two tasks in order, and the job's numbers as its result.
"""

from __future__ import annotations

from typing import Annotated, Any

from prefect import Task, flow, get_run_logger, task
from prefect.client.schemas.objects import State, TaskRun
from prefect.tasks import exponential_backoff
from pydantic import Field

from workshop_lab.flow_tools.airbyte_api import (
    AirbyteApiError,
    AirbyteAuthError,
    AirbyteClient,
    AirbyteJobError,
    AirbyteUnreachable,
    Job,
)


# ---------------------------------------------------------------------------------------------
# Which failures are worth another try? A platform that is still starting (refused connection,
# 502 from the proxy, timeouts) is; wrong credentials, a missing connection or a failed job are
# not: the same call would fail the same way.
# ---------------------------------------------------------------------------------------------
def is_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry an unreachable or overloaded Airbyte; never bad credentials, a missing connection or a failed job."""
    try:
        state.result()  # re-raises the exception the attempt failed with
    except (AirbyteAuthError, AirbyteJobError):
        return False
    except AirbyteUnreachable:
        return True
    except AirbyteApiError as error:
        return error.status_code >= 500 or error.status_code == 429
    except Exception:
        return False
    return False


# ---------------------------------------------------------------------------------------------
# 1. Trigger. One POST /api/public/v1/jobs {connectionId, jobType: "sync"}.
#    Why these numbers: 3 retries, 10 s, 20 s, 40 s apart, ride out a proxy that is still coming up
#    (the platform's first start takes minutes) without hiding a platform that is down for good.
# ---------------------------------------------------------------------------------------------
@task(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=10), retry_condition_fn=is_transient)
def trigger_sync(connection_name: str) -> int:
    """Find the Airbyte connection by name, start a sync of it and return the job id."""
    logger = get_run_logger()
    with AirbyteClient.from_env() as airbyte:
        connection = airbyte.find_connection(connection_name)
        if connection is None:
            raise AirbyteApiError(
                f"no Airbyte connection named {connection_name!r}: run "
                "`.venv/bin/python -m workshop_lab.airbyte_platform bootstrap` first",
                404,
                "",
            )
        job = airbyte.trigger_sync(connection.connection_id)
    logger.info("Airbyte sync job %s started for %s (%s)", job.job_id, connection_name, job.status)
    return job.job_id


# ---------------------------------------------------------------------------------------------
# 2. Wait. GET /api/public/v1/jobs/{id} every `poll_seconds` until the job ends. The API calls
#    themselves may hit a hiccup: 2 retries, 15 s apart, resume the waiting (the job goes on in
#    Airbyte meanwhile). A job that ended failed or cancelled, or ran past the timeout, fails the
#    task at once, with the job id in the message.
# ---------------------------------------------------------------------------------------------
@task(retries=2, retry_delay_seconds=15, retry_condition_fn=is_transient)
def wait_for_sync(job_id: int, timeout_seconds: int, poll_seconds: float = 10.0) -> dict[str, Any]:
    """Poll the Airbyte job until it ends; return its numbers if it succeeded, raise if not."""
    logger = get_run_logger()

    def report(job: Job) -> None:
        logger.info("job %s: %s", job.job_id, job.status)

    with AirbyteClient.from_env() as airbyte:
        job = airbyte.wait_for_job(job_id, timeout=timeout_seconds, poll=poll_seconds, on_poll=report)
    return {
        "job_id": job.job_id,
        "status": job.status,
        "rows_synced": job.rows_synced,
        "bytes_synced": job.bytes_synced,
        "duration": job.duration,
    }


# ---------------------------------------------------------------------------------------------
# 3. The flow. Typed parameters with bounds: the deployment enforces them before a run starts.
# ---------------------------------------------------------------------------------------------
@flow(name="airbyte-platform-sync", log_prints=True)
def airbyte_platform_sync(
    connection_name: str = "faker-to-warehouse",
    timeout_seconds: Annotated[int, Field(ge=60, le=6 * 3600)] = 1800,
) -> dict[str, Any]:
    """Trigger a sync of an Airbyte platform connection and wait for its job to succeed."""
    job_id = trigger_sync(connection_name)
    result = wait_for_sync(job_id, timeout_seconds)
    print(
        f"Airbyte job {result['job_id']} {result['status']}: {result['rows_synced'] or 0} rows in {result['duration']}"
    )
    return result


if __name__ == "__main__":
    airbyte_platform_sync()
