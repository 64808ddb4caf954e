"""The Compliance page in a real browser, against `baseshift serve` (authentication off on
loopback): it shows the frameworks and the controls without a console error or a
Content-Security-Policy violation, and its two links download the HTML and the PDF."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.auth_support import AUTH_OFF
from tests.web.browser_support import ARGS, CHROMIUM, new_page, serving, watch_csp

pytestmark = pytest.mark.slow


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "workflows").mkdir()
    with serving(tmp_path, tmp_path / "workflows", "/ui/compliance",
                 {**os.environ, **AUTH_OFF}) as (url, _):
        yield url


def test_the_compliance_page_and_its_downloads(served: str, tmp_path: Path) -> None:
    assert CHROMIUM.exists(), "the browser test needs Debian's Chromium at /usr/bin/chromium"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser: Any = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                         args=ARGS)
        try:
            page = new_page(browser)
            csp = watch_csp(page)
            problems: list[str] = []
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.goto(served + "/ui/compliance")
            page.wait_for_load_state("networkidle")
            assert page.locator("#frameworks li").count() == 3
            access = page.locator('tr[data-control="auth.access-control"]')
            assert "pending" in access.inner_text()  # served with --auth none
            assert "auth = \"none\"" in access.inner_text()
            downloads = {}
            for link in ("#export-html", "#export-pdf"):
                with page.expect_download() as info:
                    page.click(link)
                download = info.value
                target = tmp_path / download.suggested_filename
                download.save_as(target)
                downloads[target.suffix] = target.read_bytes()
            assert downloads[".html"].startswith(b"<!DOCTYPE html>")
            assert b"auth.access-control" in downloads[".html"]
            assert downloads[".pdf"].startswith(b"%PDF-")
            assert problems == [] and csp == [], problems + csp
        finally:
            browser.close()
