"""Trigger deployment runs and read what they did, through the Prefect API.

Used by `./lab up` (the first flow), `./lab run`, the tests and the benchmarks. Import it only
after PREFECT_API_URL points at the lab: Prefect reads its settings from the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment


@dataclass
class RunOutcome:
    flow_run: FlowRun
    seconds: float

    @property
    def state_type(self) -> str:
        state = self.flow_run.state
        return state.type.value if state else "UNKNOWN"

    @property
    def completed(self) -> bool:
        return self.state_type == "COMPLETED"


def run_and_wait(deployment: str, parameters: dict[str, Any] | None = None, timeout: float = 300) -> RunOutcome:
    """Create a run of a deployment, let the worker pick it up, and wait for a final state."""
    import time

    started = time.monotonic()
    flow_run = run_deployment(deployment, parameters=parameters or {}, timeout=timeout, poll_interval=1)
    return RunOutcome(flow_run, time.monotonic() - started)


def table_artifact(flow_run_id: UUID, key: str) -> list[dict[str, Any]]:
    """The rows of a table artifact that a flow run created."""
    import json

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])),
        )
    for artifact in artifacts:
        if artifact.key == key:
            data = artifact.data
            return json.loads(data) if isinstance(data, str) else list(data or [])
    return []
