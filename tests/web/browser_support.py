"""What the browser tests share: Debian's Chromium, launched by Playwright, and pages that
report every Content-Security-Policy violation."""
from __future__ import annotations

from pathlib import Path
from typing import Any

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
