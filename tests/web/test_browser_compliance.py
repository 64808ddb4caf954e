"""The Compliance page in a real browser, against `baseshift serve` (authentication off on
loopback): it shows the frameworks and the controls without a console error or a
Content-Security-Policy violation, and its two links download the HTML and the PDF."""
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
from tests.web.browser_support import ARGS, CHROMIUM, new_page, watch_csp

pytestmark = pytest.mark.slow


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "workflows").mkdir()
    port = free_port()
    log_path = tmp_path / "server.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "baseshift", "serve", "--port", str(port), "--workflows",
         str(tmp_path / "workflows"), "--data-dir", str(tmp_path / "data")],
        stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **AUTH_OFF})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            try:
                if httpx.get(url + "/ui/compliance", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        stop_process(proc)
        log.close()


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
