"""Fixtures of the course modules' tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest


@pytest.fixture
def upstream(embedded_lab) -> Iterator[httpx.Client]:
    """The lab's flaky upstream, calm (and with fresh /stats) before and after the test."""
    with httpx.Client(base_url=embedded_lab.upstream_url, timeout=30) as client:
        client.post("/chaos/reset").raise_for_status()
        yield client
        client.post("/chaos/reset").raise_for_status()
