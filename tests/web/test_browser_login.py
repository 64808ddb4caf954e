"""The first sign-in in a real browser, against `baseshift serve` as a user starts it: the
console prints the first admin's password; the browser is sent to the sign-in page, must
choose a new password, enrol TOTP (the code computed by pyotp from the key the page
shows), sees the recovery codes once, and then starts a run from the UI. No step makes the
browser report a Content-Security-Policy violation. Then it signs out, and a form posted
without the page's CSRF token is refused."""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyotp
import pytest

from tests.web.browser_support import ARGS, CHROMIUM, new_page, serving, watch_csp

pytestmark = pytest.mark.slow

NEW_PASSWORD = "a brand new passphrase for admin"


@pytest.fixture
def first_start(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A server started on an empty data dir (authentication on, as by default); yields its
    URL and the password it printed for `admin`."""
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "hello.bsw").write_text(
        'workflow hello {\n  version "1.0.0"\n'
        '  job greet uses shell { with { command: "echo hi" } }\n}\n')
    env = {k: v for k, v in os.environ.items() if k != "BASESHIFT_AUTH"}
    with serving(tmp_path, folder, "/ui/login", env) as (url, log_path):
        printed = re.search(r"the password\s+(\S+)\s+It is shown only this once",
                            log_path.read_text())
        assert printed, log_path.read_text()
        yield url, printed.group(1)
    assert printed.group(1) not in log_path.read_text().replace(printed.group(0), ""), \
        "the first password appears in the log beyond the one announcement"


def test_first_sign_in_new_password_totp_enrolment_then_a_run(
        first_start: tuple[str, str]) -> None:
    from playwright.sync_api import sync_playwright

    url, password = first_start
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            page = new_page(browser)
            csp = watch_csp(page)
            page.goto(url + "/ui/workflows/hello")
            page.wait_for_url("**/ui/login?next=*")

            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", password)
            page.click("button:has-text('Sign in')")
            page.wait_for_selector("text=Choose a new password")

            page.fill("input[name=password]", password)
            page.fill("input[name=new_password]", NEW_PASSWORD)
            page.fill("input[name=repeat_password]", NEW_PASSWORD)
            page.click("button:has-text('Set the password')")
            page.wait_for_selector("text=Enrol an authenticator app")
            assert page.locator("figure.qr svg").count() == 1
            secret = page.inner_text("#totp-secret").strip()

            page.fill("input[name=totp_token]", pyotp.TOTP(secret).now())
            page.click("button:has-text('Enrol')")
            page.wait_for_selector("#recovery-codes")
            assert page.locator("#recovery-codes li").count() == 10
            page.click("text=Continue")
            page.wait_for_url("**/ui/workflows/hello")
            assert "admin" in page.inner_text("header .who")

            page.click("button:has-text('Start run')")
            page.wait_for_url("**/ui/runs/*")
            page.wait_for_selector("#run-state .state-completed")

            # A form from another page, without this page's CSRF token, changes nothing.
            refused = page.request.post(url + "/ui/workflows/hello/runs", form={})
            assert refused.status == 403
            assert "CSRF" in refused.text()

            page.click("button:has-text('Sign out')")
            page.wait_for_url("**/ui/login")
            page.goto(url + "/ui/runs")
            page.wait_for_url("**/ui/login?next=*")
            assert csp == []
        finally:
            browser.close()
    # the old password no longer works; the new one needs the TOTP code now
    old = httpx.post(url + "/api/v1/auth/login",
                     json={"username": "admin", "password": password})
    assert old.status_code == 401
    no_code = httpx.post(url + "/api/v1/auth/login",
                         json={"username": "admin", "password": NEW_PASSWORD})
    assert no_code.status_code == 401 and "TOTP" in no_code.json()["detail"]
