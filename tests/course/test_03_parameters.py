"""Module 03, parameters: the deployment enforces its parameter schema, so the server refuses a bad
value with a message naming the field and creates no flow run; a good value runs to COMPLETED."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.stack

DEPLOYMENT = "parameters/parameters"


def runs_of(embedded_lab, deployment_id: str) -> list[dict]:
    return embedded_lab.post("/flow_runs/filter", {"deployments": {"id": {"any_": [deployment_id]}}, "limit": 200})


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"city": "Atlantis"}, "city"),
        ({"hours": 0}, "hours"),
        ({"hours": 1000}, "hours"),
        ({"hours": "a day"}, "hours"),
        ({"thresholds": {"hot_above_c": 100}}, "hot_above_c"),
    ],
    ids=["unknown-city", "zero-hours", "too-many-hours", "hours-not-a-number", "threshold-out-of-range"],
)
def test_a_bad_parameter_is_rejected_before_any_run_exists(embedded_lab, parameters, field):
    deployment = embedded_lab.deployment(DEPLOYMENT)
    assert deployment["enforce_parameter_schema"] is True
    before = runs_of(embedded_lab, deployment["id"])

    response = embedded_lab.request(
        "POST", f"/deployments/{deployment['id']}/create_flow_run", {"parameters": parameters}
    )
    assert response.status_code in (409, 422), response.text
    detail = response.json()["detail"]
    assert "Validation failed" in detail and field in detail, detail

    assert runs_of(embedded_lab, deployment["id"]) == before, "a rejected request must not create a flow run"


def test_a_good_parameter_runs_to_completed(embedded_lab):
    run = embedded_lab.run_deployment(
        DEPLOYMENT, {"city": "Oslo", "hours": 48, "thresholds": {"hot_above_c": 10, "cold_below_c": 2}}
    )
    assert run["state"]["type"] == "COMPLETED", run["state"]
    assert run["parameters"]["city"] == "Oslo"
    [report] = embedded_lab.table_artifact(run["id"], "weather-report")
    assert report["city"] == "Oslo" and report["readings"] == 48, report
    assert report["min_c"] <= report["mean_c"] <= report["max_c"]


def test_defaults_make_a_quick_run_possible(embedded_lab):
    run = embedded_lab.run_deployment(DEPLOYMENT)
    assert run["state"]["type"] == "COMPLETED", run["state"]
    [report] = embedded_lab.table_artifact(run["id"], "weather-report")
    assert (report["city"], report["readings"]) == ("Berlin", 24), report
