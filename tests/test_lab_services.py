"""The course's two lab services, on both labs: the flaky upstream does what an instructor sets
at run time, and the webhook inbox accepts Slack-style posts and shows them."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.stack


@pytest.fixture(params=["embedded", "compose"])
def lab(request):
    return request.getfixturevalue(f"{request.param}_lab")


def test_upstream_serves_seeded_data_and_obeys_chaos_set_at_run_time(lab):
    upstream = httpx.Client(base_url=lab.upstream_url, timeout=30)
    try:
        first = upstream.get("/orders", params={"page": 2, "page_size": 50}).json()
        assert first["total"] == 5000 and len(first["records"]) == 50
        assert upstream.get("/orders", params={"page": 2, "page_size": 50}).json() == first, "the data is seeded"

        upstream.patch("/chaos", json={"fail_next": 2}).raise_for_status()
        assert [upstream.get("/customers").status_code for _ in range(3)] == [503, 503, 200]

        clean = upstream.get("/customers", params={"page_size": 20}).json()["records"]
        upstream.patch("/chaos", json={"malformed_rate": 1.0}).raise_for_status()
        broken = upstream.get("/customers", params={"page_size": 20}).json()["records"]
        assert all(b != c and b["customer_id"] == c["customer_id"] for b, c in zip(broken, clean, strict=True))

        assert upstream.get("/orders", params={"page_size": 501}).status_code == 400, "a client error, not retryable"
        stats = upstream.get("/stats").json()
        assert stats["failures"] == 2 and stats["malformed_records"] == 20
    finally:
        upstream.post("/chaos/reset")


def test_inbox_accepts_slack_posts_and_shows_them(lab):
    inbox = httpx.Client(base_url=lab.inbox_url, timeout=30)
    text = f"hello from the {lab.__class__.__name__} test"
    response = inbox.post("/hooks/tests", json={"text": text})
    assert response.status_code == 200 and response.text == "ok"
    assert inbox.post("/hooks/tests", json={"username": "no text"}).status_code == 400
    assert any(m["text"] == text and m["channel"] == "tests" for m in inbox.get("/messages").json())
    assert text in inbox.get("/").text
