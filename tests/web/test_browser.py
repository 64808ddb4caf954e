"""The web UI in a real browser: Debian's Chromium, driven by Playwright, against the real
server started as `python -m baseshift serve` in a subprocess.

Start a run from its form, watch its graph turn green live (no reload), open a failed job's
log, retry the run. Screenshots are saved under a folder the test prints.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
WAIT_MS = 60_000
"""Upper bound for one browser wait; the test never depends on how fast anything is."""

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


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The real server on a free loopback port, with one workflow; yields (url, gate file)."""
    folder = tmp_path / "workflows"
    folder.mkdir()
    gate, marker = tmp_path / "gate", tmp_path / "marker"
    (folder / "live.bsw").write_text(LIVE.replace("@GATE@", str(gate))
                                     .replace("@MARKER@", str(marker)))
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "baseshift", "serve", "--port", str(port), "--workflows",
         str(folder), "--data-dir", str(tmp_path / "data")],
        stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, proc, tmp_path / "server.log")
        yield url, gate
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
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
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(WAIT_MS)

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
        finally:
            browser.close()
    assert len(list(shots.glob("*.png"))) == 6
