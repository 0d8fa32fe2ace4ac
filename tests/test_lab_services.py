"""The course's two lab services, on both labs: the flaky upstream does what an instructor sets
at run time, explains itself at `/`, documents itself offline at `/docs` and refuses a chaos
setting it does not know; the webhook inbox accepts Slack-style posts and shows them. And the work
pool no worker serves until its profile runs says so."""

from __future__ import annotations

import re

import httpx
import pytest

from workshop_lab.stack.settings import PACKAGED_WORK_POOL

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


def test_upstream_front_page_lists_every_endpoint_and_the_chaos_settings_now(lab):
    upstream = httpx.Client(base_url=lab.upstream_url, timeout=30)
    try:
        upstream.patch("/chaos", json={"seed": 4321}).raise_for_status()
        page = upstream.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), page
        paths = upstream.get("/openapi.json").json()["paths"]
        missing = [
            path for path in paths if f'href="{path}' not in page.text and f"<code>{path}</code>" not in page.text
        ]
        assert not missing, f"/ does not list {missing}"
        for link in re.findall(r'href="(/[^"]*)"', page.text):  # every example link works
            assert upstream.get(link.replace("&amp;", "&")).status_code == 200, link
        chaos = upstream.get("/chaos").json()
        assert all(f"<code>{name}</code>" in page.text for name in chaos), "every chaos setting is on the page"
        assert "<td>4321</td>" in page.text, "the page shows the settings now"
        assert f"curl -X PATCH {lab.upstream_url}/chaos" in page.text, (
            "how to change them, at the address the browser used"
        )
        urls = re.findall(r"\w+://[^\s\"'<]+", page.text)
        assert all(url.startswith(lab.upstream_url) for url in urls), f"no external links or assets: {urls}"
    finally:
        upstream.post("/chaos/reset")


@pytest.mark.parametrize("docs", ["/docs", "/redoc"])
def test_upstream_api_docs_load_only_assets_it_serves_itself(lab, docs):
    """Offline (a classroom without internet), a CDN-hosted Swagger UI is a blank page."""
    upstream = httpx.Client(base_url=lab.upstream_url, timeout=30)
    page = upstream.get(docs)
    assert page.status_code == 200, page
    assert "://" not in page.text, "the docs page must not load anything from another host"
    scripts = re.findall(r'<script src="([^"]+)"', page.text)
    assets = scripts + re.findall(r'<link[^>]* href="([^"]+)"', page.text)
    assert scripts and all(a.startswith("/") for a in assets), assets
    for asset in assets:
        response = upstream.get(asset)
        assert response.status_code == 200 and len(response.content) > 1000, (
            asset,
            response.status_code,
            len(response.content),
        )
    bundle = upstream.get(scripts[0]).text
    assert ("SwaggerUIBundle" if docs == "/docs" else "Redoc") in bundle
    assert upstream.get("/openapi.json").json()["info"]["title"] == "Flaky upstream"


def test_upstream_refuses_an_unknown_chaos_setting_and_changes_nothing(lab):
    upstream = httpx.Client(base_url=lab.upstream_url, timeout=30)
    try:
        before = upstream.get("/chaos").json()
        typo = upstream.patch("/chaos", json={"failur_rate": 0.5})
        assert typo.status_code == 422 and "'failur_rate'" in typo.json()["detail"], typo.text
        assert "failure_rate" in typo.json()["detail"], "it names the settings there are"
        # All or nothing: a known setting next to an unknown one is not applied either.
        mixed = upstream.patch("/chaos", json={"failure_rate": 0.5, "latency": 100})
        assert mixed.status_code == 422 and "'latency'" in mixed.json()["detail"], mixed.text
        # curl's -d without the JSON content type sends a form: say what to add.
        form = upstream.patch(
            "/chaos", content='{"failure_rate": 0.5}', headers={"content-type": "application/x-www-form-urlencoded"}
        )
        assert form.status_code == 422 and "-H 'content-type: application/json'" in form.json()["detail"], form.text
        assert upstream.get("/chaos").json() == before
    finally:
        upstream.post("/chaos/reset")


def test_the_packaged_pool_says_what_serves_it(lab):
    """Section 9's pool has no worker until the `packaging` profile runs: the UI shows it Not Ready
    from the first minute, and its description says why and what to type."""
    description = lab.get(f"/work_pools/{PACKAGED_WORK_POOL}")["description"] or ""
    assert "docker compose --profile packaging up --build --wait" in description, description
