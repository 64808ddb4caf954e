"""The Insights page in Chromium against the real server (`python -m baseshift serve`): after
two runs (one completed, one failed) it renders with no console error, no failed request and
no Content-Security-Policy violation, and the numbers its charts carry are the API's."""
from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.auth_support import AUTH_OFF
from tests.web.browser_support import ARGS, CHROMIUM, new_page, serving, watch_csp

pytestmark = pytest.mark.slow

FLOWS = {name: f'workflow {name} {{\n  version "1.0.0"\n'
                f'  job a uses shell {{ with {{ command: "{command}" }} }}\n}}\n'
         for name, command in (("fine", "true"), ("bad", "exit 2"))}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    folder = tmp_path / "workflows"
    folder.mkdir()
    for name, source in FLOWS.items():
        (folder / f"{name}.bsw").write_text(source)
    with serving(tmp_path, folder, "/ui/workflows", {**os.environ, **AUTH_OFF}) as (url, _):
        yield url


def run_to_the_end(url: str, workflow: str) -> None:
    started = httpx.post(f"{url}/api/v1/workflows", json={"workflow": workflow}, timeout=10)
    assert started.status_code == 201, started.text
    run_id = started.json()["workflow_id"]
    deadline = time.monotonic() + 60
    while httpx.get(f"{url}/api/v1/workflows/{run_id}", timeout=10).json()["status"] not in (
            "COMPLETED", "FAILED"):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_the_insights_page_shows_the_api_numbers_without_errors(server: str) -> None:
    assert CHROMIUM.exists(), "the browser test needs Debian's Chromium at /usr/bin/chromium"
    from playwright.sync_api import sync_playwright

    url = server
    run_to_the_end(url, "fine")
    run_to_the_end(url, "bad")
    api = httpx.get(f"{url}/api/v1/analytics/insights", params={"hours": 6}, timeout=10).json()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            page = new_page(browser)
            csp = watch_csp(page)
            problems: list[str] = []
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
                    if r.status >= 400 else None)
            page.goto(f"{url}/")
            page.click("header.site nav a:has-text('Insights')")
            page.wait_for_url("**/ui/insights")
            page.select_option("#hours", "6")
            page.click("button:has-text('Show')")
            page.wait_for_url("**/ui/insights?hours=6")
            page.wait_for_load_state("networkidle")
            bars: list[dict[str, Any]] = page.eval_on_selector_all(
                "#chart-runs rect[data-state]",
                "els => els.map(e => ({state: e.dataset.state, value: +e.dataset.value, "
                "height: e.getBBox().height}))")
            rates = page.eval_on_selector_all(
                "#chart-success rect", "els => els.map(e => +e.dataset.value)")
            rendered = page.eval_on_selector_all(
                "svg.insight", "els => els.map(e => e.getBoundingClientRect().width)")
            queue_note = page.locator("#chart-queue-none").inner_text()
        finally:
            browser.close()
    per_state: dict[str, int] = {}
    for hour in api["runs_per_hour"]:
        for state, n in hour["counts"].items():
            if n:
                per_state[state] = per_state.get(state, 0) + n
    assert per_state == {"COMPLETED": 1, "FAILED": 1}
    assert sorted((b["state"], b["value"]) for b in bars) == sorted(per_state.items())
    assert len({b["height"] / b["value"] for b in bars}) == 1  # one scale for every bar
    assert rates == [w["success_rate"] for w in api["workflows"]] == [0.0, 1.0]
    assert rendered and all(w > 100 for w in rendered)
    assert "No queue" in queue_note
    assert problems == []
    assert csp == [], "\n".join(csp)
