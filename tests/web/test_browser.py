"""The web UI in a real browser: Debian's Chromium, driven by Playwright, against the real
server started as `python -m baseshift serve` in a subprocess.

Start a run from its form, watch its graph turn green live (no reload), open a failed job's
log, retry the run; answer a waiting job wrongly, with and without JavaScript; open a fan-out
from its graph node; browse every page without a console error or a failed request; and
none of this makes the browser report a Content-Security-Policy violation.
Screenshots are saved under a folder the test prints.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.auth_support import AUTH_OFF
from tests.conftest import free_port, stop_process
from tests.web.browser_support import ARGS, CHROMIUM, WAIT_MS, new_page, watch_csp

pytestmark = pytest.mark.slow

LIVE = """
workflow live_demo {
  version "1.0.0"
  description "Waits for a gate file, then runs a job that fails on its first try"
  input { gate: string = "@GATE@", marker: string = "@MARKER@", who: string = "nobody" }

  job wait_gate uses shell {
    with { command: "while [ ! -e \\"$GATE\\" ]; do sleep 0.05; done; echo gate opened",
           env: { GATE: input.gate } }
    timeout 120s
  }

  job flaky uses shell {
    needs wait_gate
    with {
      command: "test -e \\"$M\\" || { touch \\"$M\\"; echo 'first attempt fails' >&2; exit 1; }",
      env: { M: input.marker }
    }
  }

  job report uses shell {
    needs flaky
    with { command: "echo report for ${input.who}" }
  }
}
"""

REVIEW = """
workflow review {
  version "1.0.0"
  input { gate: string = "@REVIEW_GATE@" }
  job ask uses manual { with { prompt: "Approve the purchase?" } }
  job side uses shell {
    with { command: "while [ ! -e \\"$G\\" ]; do sleep 0.05; done; echo side done",
           env: { G: input.gate } }
    timeout 120s
  }
  job after uses shell { needs ask  with { command: "echo approved" } }
}
"""

MANY = """
workflow many {
  version "1.0.0"
  job square uses shell { for x in range(40)  with { command: "echo ${x * x}" } }
  job boom uses shell { needs square  with { command: "echo 'out of squares' >&2; exit 3" } }
}
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The real server on a free loopback port, with one workflow; yields (url, gate file)."""
    folder = tmp_path / "workflows"
    folder.mkdir()
    gate, marker = tmp_path / "gate", tmp_path / "marker"
    (folder / "live.bsw").write_text(LIVE.replace("@GATE@", str(gate))
                                     .replace("@MARKER@", str(marker)))
    (folder / "review.bsw").write_text(REVIEW.replace("@REVIEW_GATE@",
                                                      str(tmp_path / "review-gate")))
    (folder / "many.bsw").write_text(MANY)
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "baseshift", "serve", "--port", str(port), "--workflows",
         str(folder), "--data-dir", str(tmp_path / "data")],
        stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **AUTH_OFF})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, proc, tmp_path / "server.log")
        yield url, gate
    finally:
        stop_process(proc)
        log.close()


def wait_until_serving(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited:\n{log.read_text()}")
        try:
            if httpx.get(url + "/ui/workflows", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the server did not start:\n{log.read_text()}")


def test_start_watch_live_open_log_and_retry(server: tuple[str, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert CHROMIUM.exists(), ("the browser test needs Debian's Chromium at /usr/bin/chromium: "
                               "apt-get install -y chromium (tests/run installs it)")
    from playwright.sync_api import sync_playwright

    url, gate = server
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with capsys.disabled():
        print(f"\nbrowser test screenshots: {shots}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            page = new_page(browser)
            csp = watch_csp(page)

            # Start a run from the form generated from the workflow's inputs.
            page.goto(f"{url}/ui/workflows/live_demo")
            page.fill("#input-who", "the browser test")
            page.screenshot(path=shots / "1-workflow-form.png", full_page=True)
            page.click("button:has-text('Start run')")
            page.wait_for_url("**/ui/runs/*")

            # The first job waits for the gate: it is running, not green.
            page.wait_for_selector("#dag-node-wait_gate.state-running", state="attached")
            assert page.locator("#dag-node-wait_gate.state-succeeded").count() == 0
            page.evaluate("window.__sameDocument = true")
            page.screenshot(path=shots / "2-running.png", full_page=True)

            # Open the gate: the node turns green through the live stream, without a reload.
            gate.touch()
            page.wait_for_selector("#dag-node-wait_gate.state-succeeded", state="attached")
            assert page.evaluate("window.__sameDocument === true")
            page.wait_for_selector("#dag-node-flaky.state-failed", state="attached")
            page.wait_for_selector("#run-state .state-failed")
            assert page.evaluate("window.__sameDocument === true")
            page.screenshot(path=shots / "3-live-update-failed.png", full_page=True)

            # Open the failed job's log.
            page.click("#log-flaky summary")
            log = page.locator("#log-flaky pre").first
            log.wait_for(state="visible")
            assert "first attempt fails" in log.inner_text()
            page.locator("#job-flaky").screenshot(path=shots / "4-failed-log.png")

            # Retry: the failed job runs again, succeeds this time, and the run completes.
            page.click("#retry-button")
            page.wait_for_selector("#dag-node-report.state-succeeded", state="attached")
            page.wait_for_selector("#run-state .state-completed")
            assert page.locator("#dag-node-flaky.state-succeeded").count() == 1
            page.screenshot(path=shots / "5-retried-completed.png", full_page=True)

            # The same page on a narrow screen.
            page.set_viewport_size({"width": 375, "height": 800})
            page.screenshot(path=shots / "6-narrow.png", full_page=True)
            assert csp == []
        finally:
            browser.close()
    assert len(list(shots.glob("*.png"))) == 6


def start_run(url: str, workflow: str) -> str:
    """Start a run through the workflow page's form; its run page's URL."""
    answer = httpx.post(f"{url}/ui/workflows/{workflow}/runs", data={}, timeout=30)
    assert answer.status_code == 303, answer.text
    return url + answer.headers["location"]


@pytest.fixture
def browser() -> Iterator[Any]:
    assert CHROMIUM.exists(), ("the browser test needs Debian's Chromium at /usr/bin/chromium: "
                               "apt-get install -y chromium (tests/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def test_a_refused_answer_stays_in_place_through_live_updates(
        server: tuple[str, Path], tmp_path: Path, browser: Any) -> None:
    url, _ = server
    run_url = start_run(url, "review")
    page = new_page(browser)
    csp = watch_csp(page)
    page.goto(run_url)
    page.evaluate("window.__sameDocument = true")

    page.fill("#output-ask", '{"approved": tru')
    page.click("button:has-text('Complete ask')")
    error = page.locator("#output-ask-help .field-error")
    error.wait_for()
    assert "the output is not JSON" in error.inner_text()
    assert page.input_value("#output-ask") == '{"approved": tru'
    assert page.input_value("#error-ask") == "rejected in the web UI"
    assert page.url == run_url and page.evaluate("window.__sameDocument === true")

    # A live update while the person is still typing keeps the form, the text and the error.
    page.fill("#output-ask", '{"approved": true}')
    (tmp_path / "review-gate").touch()
    page.wait_for_selector("#dag-node-side.state-succeeded", state="attached")
    page.wait_for_selector("#job-side .state-succeeded")
    assert page.input_value("#output-ask") == '{"approved": true}'
    assert error.is_visible() and page.evaluate("window.__sameDocument === true")
    page.screenshot(path=tmp_path / "refused-answer.png", full_page=True)

    page.click("button:has-text('Complete ask')")
    page.wait_for_selector("#run-state .state-completed")
    assert page.locator("#output-ask").count() == 0
    assert page.reload().status == 200 and page.url == run_url
    assert csp == [], "\n".join(csp)


def test_without_javascript_a_refused_answer_is_the_run_page_at_its_own_url(
        server: tuple[str, Path], browser: Any) -> None:
    url, _ = server
    run_url = start_run(url, "review")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(run_url)
    page.fill("#output-ask", "[1, 2")
    with page.expect_navigation():
        page.click("button:has-text('Complete ask')")
    assert page.url == run_url
    assert "the output is not JSON" in page.inner_text("#output-ask-help .field-error")
    assert page.input_value("#output-ask") == "[1, 2"
    again = page.goto(page.url)
    assert again is not None and again.status == 200
    page.fill("#error-ask", "changed my mind")
    with page.expect_navigation():
        page.click("button:has-text('Fail ask')")
    assert page.url == run_url and page.locator("#output-ask").count() == 0
    context.close()


def test_a_fan_out_is_one_line_until_opened_and_graph_nodes_open_their_job(
        server: tuple[str, Path], tmp_path: Path, browser: Any) -> None:
    url, _ = server
    run_url = start_run(url, "many")
    page = new_page(browser)
    csp = watch_csp(page)
    page.goto(run_url)
    page.wait_for_selector("#run-state .state-failed")
    page.goto(run_url)  # the finished page, without a live connection

    group = page.locator("details#job-square")
    assert "40 succeeded" in page.inner_text("details#job-square > summary")
    assert not group.evaluate("el => el.open")
    assert not page.locator("#job-square-0-").is_visible()
    closed = page.evaluate("document.documentElement.scrollHeight")
    page.screenshot(path=tmp_path / "fan-out-closed.png", full_page=True)

    page.click("#dag-node-square")  # a graph node opens its job's panel
    assert page.evaluate("location.hash") == "#job-square"
    page.locator("#job-square-39-").wait_for()
    assert group.evaluate("el => el.open")
    assert page.evaluate("document.documentElement.scrollHeight") > closed

    page.click("#dag-node-boom")
    assert page.evaluate("location.hash") == "#job-boom"
    assert page.locator("#job-boom:target").count() == 1

    # The nodes are links in the tab order: Tab moves from one to the next, Enter follows.
    page.focus('#dag a.dag-link[href="#job-square"]')
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('href')") == "#job-boom"
    page.focus('#dag a.dag-link[href="#job-square"]')
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#job-square"
    assert csp == [], "\n".join(csp)


def test_browsing_every_page_logs_no_console_error_and_no_failed_request(
        server: tuple[str, Path], browser: Any) -> None:
    url, _ = server
    run_url = start_run(url, "many")
    page = browser.new_page()
    page.set_default_timeout(WAIT_MS)
    csp = watch_csp(page)
    page.goto(run_url)
    page.wait_for_selector("#run-state .state-failed")
    page.goto("about:blank")  # leaving a live page aborts its event stream: not a problem

    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
            if r.status >= 400 else None)
    page.on("requestfailed", lambda r: problems.append(f"failed {r.url}: {r.failure}"))
    for path in ("/", "/ui/workflows", "/ui/workflows/many", "/ui/workflows/review",
                 "/ui/runs", run_url.removeprefix(url), "/ui/templates", "/ui/validate"):
        page.goto(url + path)
        page.wait_for_load_state("networkidle")
    page.fill("#source", MANY)  # the validate form checks as one types (htmx)
    page.wait_for_selector("#validate-result .state-succeeded")
    assert problems == []

    missing = page.goto(url + "/ui/no/such/page")
    assert missing is not None and missing.status == 404
    assert page.locator("header.site nav").is_visible() and "Not found" in page.title()
    assert csp == [], "\n".join(csp)
