"""The dbt project's Snowflake option: `dbt parse` accepts the snowflake target of profiles.yml
(real dbt-snowflake adapter, no account needed to parse), with the raw sources in the Snowflake
database the environment names. The DuckDB target is built for real by tests/course/test_13_elt.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from workshop_lab.stack.settings import REPO_ROOT

DBT = Path(sys.executable).with_name("dbt")


def test_dbt_parse_accepts_the_snowflake_profile(tmp_path):
    env = {
        **os.environ,
        "DBT_TARGET": "snowflake",
        "SNOWFLAKE_ACCOUNT": "xy12345.eu-central-1",
        "SNOWFLAKE_USER": "learner",
        "SNOWFLAKE_PASSWORD": "not-a-secret",
        "SNOWFLAKE_WAREHOUSE": "COMPUTE_WH",
        "SNOWFLAKE_DATABASE": "LAB",
        "LAB_WAREHOUSE_PATH": str(tmp_path / "unused.duckdb"),
        "LAB_AIRBYTE_RAW_PATH": str(tmp_path / "unused-raw.duckdb"),
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    project = REPO_ROOT / "dbt_project"
    result = subprocess.run(
        [str(DBT), "parse", "--project-dir", str(project), "--profiles-dir", str(project)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    assert manifest["metadata"]["adapter_type"] == "snowflake"
    sources = {source["name"]: source for source in manifest["sources"].values()}
    assert set(sources) == {"users", "products", "purchases"}
    assert {(s["database"], s["schema"]) for s in sources.values()} == {("LAB", "raw")}
    models = {node["name"] for node in manifest["nodes"].values() if node["resource_type"] == "model"}
    assert {"customers", "daily_revenue", "product_performance", "quarantined_records"} <= models
    assert not (project / "target").exists(), "dbt wrote its build output into the project folder"
