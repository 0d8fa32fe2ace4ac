"""Module 07, caching and secrets: a second run with the same inputs finds the task's result in the
cache (state Cached) and sends the upstream no second request; the flow authenticates with a token
from a Secret block it loads by name, and the token never appears in the run's logs."""

from __future__ import annotations

import hashlib
import random
import secrets
import uuid
from collections.abc import Iterator

import pytest

pytestmark = pytest.mark.stack

DEPLOYMENT = "caching-and-secrets/caching-and-secrets"


@pytest.fixture
def secret_block(embedded_lab) -> Iterator[tuple[str, str]]:
    """A Secret block with a random value, created through the REST API (as the UI does), then deleted."""
    name, value = f"test-token-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(24)
    block_type = embedded_lab.get("/block_types/slug/secret")
    [schema, *_] = embedded_lab.post(
        "/block_schemas/filter", {"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}}
    )
    document = embedded_lab.post(
        "/block_documents/",
        {"name": name, "block_type_id": block_type["id"], "block_schema_id": schema["id"], "data": {"value": value}},
    )
    try:
        yield name, value
    finally:
        embedded_lab.request("DELETE", f"/block_documents/{document['id']}")


def task_state(embedded_lab, flow_run_id: str, task_prefix: str) -> str:
    [task_run] = [t for t in embedded_lab.task_runs(flow_run_id) if t["task_key"].startswith(task_prefix)]
    return task_run["state"]["name"]


def test_second_run_with_the_same_inputs_is_cached(embedded_lab, upstream, secret_block):
    # A page size no earlier run used, so the first run cannot find anything in the cache.
    parameters = {"page": 1, "page_size": random.randint(20, 400), "secret_block": secret_block[0]}

    first = embedded_lab.run_deployment(DEPLOYMENT, parameters)
    assert first["state"]["type"] == "COMPLETED", first["state"]
    assert task_state(embedded_lab, first["id"], "fetch_customers_page") == "Completed"
    assert upstream.get("/stats").json()["requests"] == 1

    second = embedded_lab.run_deployment(DEPLOYMENT, parameters)
    assert second["state"]["type"] == "COMPLETED", second["state"]
    assert task_state(embedded_lab, second["id"], "fetch_customers_page") == "Cached"
    assert upstream.get("/stats").json()["requests"] == 1, "a cached task must not call the upstream again"

    # A different input is a different cache key: a real request again.
    third = embedded_lab.run_deployment(DEPLOYMENT, {**parameters, "page": 2})
    assert task_state(embedded_lab, third["id"], "fetch_customers_page") == "Completed"
    assert upstream.get("/stats").json()["requests"] == 2


def test_flow_uses_the_secret_block_without_revealing_it(embedded_lab, upstream, secret_block):
    name, value = secret_block
    run = embedded_lab.run_deployment(DEPLOYMENT, {"secret_block": name})
    assert run["state"]["type"] == "COMPLETED", run["state"]

    artifacts = embedded_lab.post(
        "/artifacts/filter",
        {"artifacts": {"flow_run_id": {"any_": [run["id"]]}, "key": {"any_": ["caching-and-secrets"]}}},
    )
    markdown = artifacts[0]["data"]
    fingerprint = "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:12]
    assert fingerprint in markdown and name in markdown, markdown

    logs = embedded_lab.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [run["id"]]}}, "limit": 200})
    assert logs, "the run should have logged something"
    assert not any(value in log["message"] for log in logs), "the secret's value must never be logged"
    assert value not in str(run["parameters"])


def test_a_missing_secret_block_fails_with_a_clear_message(embedded_lab):
    run = embedded_lab.run_deployment(DEPLOYMENT, {"secret_block": f"no-such-block-{uuid.uuid4().hex[:8]}"})
    assert run["state"]["type"] == "FAILED", run["state"]
    assert "No Secret block named" in run["state"]["message"], run["state"]["message"]
