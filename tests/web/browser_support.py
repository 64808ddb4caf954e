"""What the browser tests share: Debian's Chromium, launched by Playwright, and pages that
report every Content-Security-Policy violation."""
from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port, stop_process

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
WAIT_MS = 60_000
"""Upper bound for one browser wait; the test never depends on how fast anything is."""


def new_page(browser: Any) -> Any:
    """A page of the usual desktop size that waits WAIT_MS for what a test expects."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(WAIT_MS)
    return page


CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => window.reportCspViolation(
  `${e.effectiveDirective} refused ${e.blockedURI || "inline"} in ${e.sourceFile}:${e.lineNumber}`
), true);
"""


def watch_csp(page: Any) -> list[str]:
    """Every Content-Security-Policy violation the page reports from now on (the event, and
    the console message Chromium writes), across navigations."""
    violations: list[str] = []

    def report(text: str) -> None:
        violations.append(text)

    page.expose_function("reportCspViolation", report)
    page.add_init_script(CSP_LISTENER)
    page.on("console", lambda m: violations.append(m.text)
            if "Content Security Policy" in m.text else None)
    return violations


@contextmanager
def serving(tmp_path: Path, workflows: Path, ready: str,
            env: Mapping[str, str]) -> Iterator[tuple[str, Path]]:
    """`baseshift serve` of `workflows` on a free loopback port (data in tmp_path/data, its
    output in tmp_path/server.log); yields its URL and the log once GET `ready` answers 200,
    and stops it afterwards."""
    port = free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "baseshift", "serve", "--port", str(port), "--workflows",
             str(workflows), "--data-dir", str(tmp_path / "data")],
            stdout=log, stderr=subprocess.STDOUT, env={**env, "PYTHONUNBUFFERED": "1"})
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                try:
                    if httpx.get(url + ready, timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            yield url, log_path
        finally:
            stop_process(proc)
