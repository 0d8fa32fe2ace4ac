"""Shared by the duckdb_loader_* probes (tests/test_duckdb_loader.py), run by the Airbyte venv's Python
with a scratch working directory: the loader (airbyte/duckdb_loader.py) importable as `dl`, and the
pinned source-faker's saved catalog."""

import json
import sys
from pathlib import Path

AIRBYTE = Path(__file__).resolve().parents[2] / "airbyte"
sys.path.insert(0, str(AIRBYTE))

import duckdb_loader as dl  # noqa: E402  (from airbyte/, put on sys.path above)

saved = json.loads((AIRBYTE / "source-faker.metadata.json").read_text())
catalog = {s["name"]: s for s in saved["catalog"]["streams"]}
sync = {"primary_key": "id", "cursor_field": "updated_at"}

__all__ = ["AIRBYTE", "catalog", "dl", "saved", "sync"]
