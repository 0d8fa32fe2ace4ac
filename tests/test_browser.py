"""A learner's browser: headless Chromium opens the Prefect UI from the host and sees the
deployment and a completed run — on the embedded lab and on the compose lab. This catches the
UI-cannot-reach-the-API breakage (a wrong PREFECT_UI_API_URL): the page loads but stays empty."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.stack]

SCREENSHOTS = Path(os.environ.get("LAB_TEST_ARTIFACTS", "/tmp/lab-test-artifacts"))
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(params=["embedded", "compose"])
def lab(request):
    if request.param == "compose":
        request.getfixturevalue("docker_available")
    return request.getfixturevalue(f"{request.param}_lab")


@pytest.fixture
def page(chromium_path, tmp_path, request):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            yield page
        finally:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
            browser.close()


def test_ui_shows_the_deployment_and_a_completed_run(lab, page):
    from playwright.sync_api import expect

    run = lab.run_deployment("hello-lab/hello-lab")
    assert run["state"]["type"] == "COMPLETED", run["state"]

    page.goto(f"{lab.ui_url}/deployments", wait_until="domcontentloaded")
    # The course has more deployments than the list's first page holds: search, as a learner would.
    page.get_by_placeholder("Search deployments").fill("hello-lab")
    page.get_by_text("hello-lab", exact=True).first.wait_for(timeout=30_000)

    # The run's own page: its heading (Prefect UI's PageHeadingFlowRun: crumbs "Runs / <name>", then
    # the run's state badge) names this test's run and shows its state, read from the API. Scoped to
    # that heading, so a "Completed" elsewhere on the page (another run, a filter) does not count.
    page.goto(f"{lab.ui_url}/runs/flow-run/{run['id']}", wait_until="domcontentloaded")
    heading = page.locator(".page-heading-flow-run").filter(has_text=run["name"])
    heading.wait_for(timeout=30_000)
    badge = heading.locator(".page-heading-flow-run__meta .state-badge")
    expect(badge).to_have_text("Completed", timeout=30_000)
    expect(badge).to_have_class(re.compile(r"\bstate--completed\b"))
