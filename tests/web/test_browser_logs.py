"""The log search page in Chromium against the real server (`python -m baseshift serve`):
after a run that fails, searching its words finds the attempt's lines with the matched terms
marked (and the markup they print shown as text); a query that does not parse shows where
(line:col) and why. No Content-Security-Policy violation on the way."""
from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.auth_support import AUTH_OFF
from tests.web.browser_support import ARGS, CHROMIUM, new_page, serving, watch_csp

pytestmark = pytest.mark.slow

FLOW = '''workflow loud {
  version "1.0.0"
  job shout uses shell { with { command: "echo '<b>kaboom</b> Kaboom again'; exit 2" } }
}
'''


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "loud.bsw").write_text(FLOW)
    with serving(tmp_path, folder, "/ui/workflows", {**os.environ, **AUTH_OFF}) as (url, _):
        yield url


def stored_lines_of_a_failed_run(url: str) -> None:
    started = httpx.post(f"{url}/api/v1/workflows", json={"workflow": "loud"}, timeout=10)
    assert started.status_code == 201, started.text
    run_id = started.json()["workflow_id"]
    deadline = time.monotonic() + 60
    while not httpx.get(f"{url}/api/v1/logs", params={"q": f"run_id:{run_id} AND kaboom"},
                        timeout=10).json()["logs"]:
        assert time.monotonic() < deadline, "the attempt's lines never reached the store"
        time.sleep(0.1)


def test_searching_the_logs_marks_the_terms_and_explains_a_bad_query(server: str) -> None:
    assert CHROMIUM.exists(), "the browser test needs Debian's Chromium at /usr/bin/chromium"
    from playwright.sync_api import sync_playwright

    stored_lines_of_a_failed_run(server)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            page = new_page(browser)
            csp = watch_csp(page)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.goto(f"{server}/")
            page.click("header.site nav a:has-text('Logs')")
            page.wait_for_url("**/ui/logs")
            page.fill("#log-query", "kaboom AND source:attempt")
            page.click("#log-search button[type=submit]")
            page.wait_for_selector("#log-lines mark")
            marks = page.eval_on_selector_all("#log-lines mark",
                                              "els => els.map(e => e.textContent)")
            assert marks == ["kaboom", "Kaboom"]
            message = page.locator("#log-lines .log-message").first.inner_text()
            assert message == "<b>kaboom</b> Kaboom again"
            assert page.locator("#log-lines b").count() == 0  # printed markup stays text
            assert "q=kaboom" in page.url  # the search is in the address, to share or reload
            page.fill("#log-query", "nosuch:x")
            page.click("#log-search button[type=submit]")
            alert = page.wait_for_selector("#log-query-error")
            text = alert.inner_text()
            assert "1:1" in text and "nosuch" in text
            assert csp == [] and errors == []
        finally:
            browser.close()
