"""The compliance report (`GET /api/v1/compliance/report`, `/ui/compliance` and its exports):
every control is computed from the live installation, so flipping the setting or the state
behind one flips its status and evidence, and the per-framework counts with it; plugin
text is escaped on every page; the exports are real HTML and PDF downloads."""
from __future__ import annotations

import re
import time
import zlib
from collections.abc import Callable
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from baseshift.core.access import Grant, Role
from baseshift.core.audit import AuditEntry
from baseshift.core.compliance import Control
from baseshift.core.hookspecs import hookimpl
from baseshift.plugins.auth.signing import _new_record
from baseshift.plugins.auth.state import AUTH
from baseshift.plugins.compliance.report import FrameworkSummary
from baseshift.plugins.server.listener import LISTENER, Listener
from tests.auth_support import bearer, token_for
from tests.tls_support import make_pki

REPORT = "/api/v1/compliance/report"
DAY = 86400.0


async def report(client: httpx.AsyncClient) -> dict[str, Any]:
    answer = await client.get(REPORT)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def control(body: dict[str, Any], control_id: str) -> dict[str, Any]:
    found = [c for c in body["controls"] if c["id"] == control_id]
    assert len(found) == 1, [c["id"] for c in body["controls"]]
    return found[0]


def counts(body: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {name: (f["controls_implemented"], f["controls_pending"])
            for name, f in body["compliance_status"].items()}


def assert_flipped(before: dict[str, Any], after: dict[str, Any], control_id: str) -> None:
    """`control_id` went from implemented to pending, and every framework it maps to counts
    one implemented control less and one pending more (the others are unchanged)."""
    was, now = control(before, control_id), control(after, control_id)
    assert (was["status"], now["status"]) == ("implemented", "pending")
    assert was["evidence"] != now["evidence"]
    for name, (done, pending) in counts(before).items():
        step = 1 if now["frameworks"].get(name) else 0
        assert counts(after)[name] == (done - step, pending + step), name


# ------------------------------------------------------------------ the report itself


async def test_the_report_has_the_seed_shape_and_every_number_comes_from_the_controls(
        make_client: Callable[..., Any]) -> None:
    class Extra:
        @hookimpl
        def compliance_controls(self) -> list[Control]:
            return [Control("acme.one", "one", "implemented", "seen", {"GDPR": ("Art. 5",)}),
                    Control("acme.two", "two", "pending", "not seen", {"GDPR": ("Art. 6",),
                                                                      "SOC 2": ("CC1.1",)})]

    async with make_client() as (bs, client):
        plain = await report(client)
    async with make_client(plugins=(Extra(),)) as (bs, client):
        body = await report(client)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["report_date"])
    assert set(body["compliance_status"]) == {"GDPR", "HIPAA", "SOC 2"}
    for name, framework in body["compliance_status"].items():
        assert framework["last_assessment"] == body["report_date"]
        mapped = [c for c in body["controls"] if c["frameworks"].get(name)]
        assert framework["controls_implemented"] == sum(c["status"] == "implemented"
                                                        for c in mapped)
        assert framework["controls_pending"] == sum(c["status"] == "pending" for c in mapped)
    assert counts(body)["GDPR"] == (counts(plain)["GDPR"][0] + 1, counts(plain)["GDPR"][1] + 1)
    assert counts(body)["SOC 2"] == (counts(plain)["SOC 2"][0], counts(plain)["SOC 2"][1] + 1)
    assert counts(body)["HIPAA"] == counts(plain)["HIPAA"]
    assert control(body, "acme.two") == {"id": "acme.two", "title": "two", "status": "pending",
                                         "evidence": "not seen",
                                         "frameworks": {"GDPR": ["Art. 6"], "SOC 2": ["CC1.1"]}}
    builtin = {"auth.access-control", "auth.mfa", "auth.admins", "auth.initial-password",
               "auth.signing-key-age", "audit.chain", "server.tls", "store.backup",
               "secrets.masking"}
    assert builtin <= {c["id"] for c in plain["controls"]}


def test_a_framework_is_compliant_only_when_all_its_controls_are_implemented() -> None:
    assert FrameworkSummary("GDPR", 3, 0).status == "compliant"
    assert FrameworkSummary("GDPR", 2, 1).status == "partially_compliant"
    assert FrameworkSummary("GDPR", 0, 4).status == "non_compliant"
    assert FrameworkSummary("GDPR", 0, 0).status == "non_compliant"  # nothing shows it


async def test_only_compliance_read_reads_the_report(make_client: Callable[..., Any]) -> None:
    async with make_client(role="viewer") as (bs, client):
        for path in (REPORT, "/ui/compliance", "/ui/compliance/report.html",
                     "/ui/compliance/report.pdf"):
            refused = await client.get(path)
            assert refused.status_code == 403 and "compliance:read" in refused.text, path
        admin = await client.put("/api/v1/roles/auditor", headers=bearer(
            await token_for(bs, "admin")), json={"permissions": ["compliance:read"]})
        assert admin.status_code in (200, 201), admin.text
        allowed = await client.get(REPORT, headers=bearer(await token_for(bs, "auditor")))
        assert allowed.status_code == 200


# ------------------------------------------------------------------ each control flips


async def test_access_control_follows_the_auth_setting(make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        on = await report(client)
    async with make_client(auth="none") as (bs, client):
        off = await report(client)
    assert_flipped(on, off, "auth.access-control")
    assert "auth = \"none\"" in control(off, "auth.access-control")["evidence"]


async def test_mfa_control_names_roles_with_and_without_mfa(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        before = await report(client)
        assert "MFA required for: admin;" in control(before, "auth.mfa")["evidence"]
        await bs.store.save_role(Role("useradmins", frozenset({"users:admin"}), mfa=False))
        after = await report(client)
        evidence = control(after, "auth.mfa")["evidence"]
        assert "administrative roles without MFA: useradmins" in evidence
        assert "not required for: author, operator, useradmins, viewer" in evidence
        assert_flipped(before, after, "auth.mfa")
        await bs.store.save_role(Role("useradmins", frozenset({"users:admin"}), mfa=True))
        assert control(await report(client), "auth.mfa")["status"] == "implemented"


async def test_admin_count_between_one_and_the_configured_maximum(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        before = await report(client)  # admin-tester only
        assert control(before, "auth.admins")["evidence"].startswith("1 enabled user(s)")
        for name in ("ann", "bob", "cat"):
            await token_for(bs, "admin", user=name)
        after = await report(client)
        assert_flipped(before, after, "auth.admins")
        assert ("4 enabled user(s) may administer users or roles: admin-tester, ann, bob, cat "
                "(at most 3 allowed)") == control(after, "auth.admins")["evidence"]
        users = bs.stash[AUTH].accounts
        await users.store.save_user(replace(await users.store.get_user("cat"), disabled=True))
        assert control(await report(client), "auth.admins")["status"] == "implemented"
    async with make_client(extra={"compliance": {"max_admins": 1}}) as (bs, client):
        await token_for(bs, "admin", user="ann")
        assert control(await report(client), "auth.admins")["status"] == "pending"


async def test_initial_admin_password_must_be_changed(make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        before = await report(client)
        accounts = bs.stash[AUTH].accounts
        await accounts.add_user("admin", "printed-once-password", [Grant("admin")],
                                temporary=True)  # as the first-admin start-up makes it
        after = await report(client)
        assert_flipped(before, after, "auth.initial-password")
        assert control(after, "auth.initial-password")["evidence"] == (
            "still on the initial or temporary password: admin")
        await accounts.set_password("admin", "a new and long password", temporary=False)
        assert control(await report(client), "auth.initial-password")["status"] == "implemented"


async def test_signing_key_age_and_last_rotation(make_client: Callable[..., Any]) -> None:
    async with make_client(role=None) as (bs, anonymous):
        headers = bearer(await token_for(bs, "admin"))  # signs with a new key
        async with httpx.AsyncClient(transport=anonymous._transport, headers=headers,
                                     base_url="http://localhost") as client:
            fresh = await report(client)
            assert "never rotated" in control(fresh, "auth.signing-key-age")["evidence"]
            tokens = bs.stash[AUTH].logins.tokens
            for key in await bs.store.signing_keys():
                await bs.store.retire_signing_key(key.kid, time.time())
            old = _new_record("EdDSA", time.time() - 100 * DAY)
            await bs.store.add_signing_key(old)
            stale = await report(client)
            assert_flipped(fresh, stale, "auth.signing-key-age")
            evidence = control(stale, "auth.signing-key-age")["evidence"]
            assert f"current key {old.kid} (EdDSA)" in evidence and "100 day(s) old" in evidence
            kid = await tokens.rotate()
            rotated = control(await report(client), "auth.signing-key-age")
            assert rotated["status"] == "implemented"
            assert f"current key {kid}" in rotated["evidence"]
            assert "2 rotation(s) so far" in rotated["evidence"]
    async with make_client(extra={"compliance": {"signing_key_max_days": 200}}) as (bs, c):
        await bs.store.add_signing_key(_new_record("EdDSA", time.time() - 100 * DAY))
        for key in (await bs.store.signing_keys())[:-1]:
            await bs.store.retire_signing_key(key.kid, time.time())
        assert control(await report(c), "auth.signing-key-age")["status"] == "implemented"


async def test_audit_chain_is_verified_now(make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        before = await report(client)
        evidence = control(before, "audit.chain")["evidence"]
        head = await bs.store.audit_head()
        assert evidence.startswith("chain intact: ") and f"head #{head.seq}" in evidence
        trail = bs.store._trail
        first = trail.records[0]
        trail.records[0] = replace(first, entry=replace(first.entry, actor="mallory"))
        after = await report(client)
        assert_flipped(before, after, "audit.chain")
        assert control(after, "audit.chain")["evidence"].startswith(
            "chain BROKEN at entry 1: entry 1 was edited")


async def test_secret_masking_follows_its_setting(make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        on = await report(client)
    async with make_client(mask_secrets=False) as (bs, client):
        off = await report(client)
    assert_flipped(on, off, "secrets.masking")
    assert "masking is OFF" in control(off, "secrets.masking")["evidence"]


async def test_tls_follows_how_serve_listens(make_client: Callable[..., Any],
                                            tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    async with make_client() as (bs, client):
        unknown = control(await report(client), "server.tls")
        assert unknown["status"] == "pending" and "not served by" in unknown["evidence"]
        bs.stash[LISTENER] = Listener("0.0.0.0", 8443, str(pki.cert))
        https = await report(client)
        bs.stash[LISTENER] = Listener("0.0.0.0", 8080)
        plain = await report(client)
    assert_flipped(https, plain, "server.tls")
    evidence = control(https, "server.tls")["evidence"]
    assert f"serving HTTPS on 0.0.0.0:8443 with certificate {pki.cert}" in evidence
    assert "Strict-Transport-Security: max-age=31536000" in evidence
    assert control(plain, "server.tls")["evidence"].startswith("serving plain HTTP on 0.0.0.0")


async def test_backup_control_reads_the_backups_the_trail_records(
        make_client: Callable[..., Any], tmp_path: Path) -> None:
    async with make_client(store="sqlite") as (bs, client):
        never = control(await report(client), "store.backup")
        assert never["status"] == "pending" and "no backup recorded" in never["evidence"]
        old = time.time() - 8 * DAY
        await bs.store.append_audit([AuditEntry("store.backup", "store:sqlite", "cli:ops",
                                                at=old, detail={"runs": "4"})])
        stale = await report(client)
        await bs.store.append_audit([AuditEntry("store.backup", "store:sqlite", "cli:ops",
                                                at=time.time(), detail={"runs": "5"})])
        fresh = await report(client)
    assert_flipped(fresh, stale, "store.backup")
    assert "8.0 day(s) ago, at most 7" in control(stale, "store.backup")["evidence"]
    done = control(fresh, "store.backup")
    assert done["status"] == "implemented"
    assert "by cli:ops: 5 run(s); 2 backup(s) recorded" in done["evidence"]
    async with make_client(store="sqlite", extra={"compliance": {"backup_max_days": 10}}) as (
            bs, client):
        await bs.store.append_audit([AuditEntry("store.backup", "store:sqlite", "cli:ops",
                                                at=old, detail={"runs": "4"})])
        assert control(await report(client), "store.backup")["status"] == "implemented"


@pytest.mark.slow
async def test_baseshift_backup_records_itself_for_the_report(
        run_cli: Any, make_client: Callable[..., Any], tmp_path: Path) -> None:
    assert run_cli("run", "workflows/hello.bsw").exit_code == 0
    result = run_cli("backup", str(tmp_path / "state.db"))
    assert result.exit_code == 0, result.stderr
    async with make_client(store="sqlite", data_dir=tmp_path / "cli-data") as (bs, client):
        done = control(await report(client), "store.backup")
    assert done["status"] == "implemented"
    assert re.search(r"by cli:\S+: 1 run\(s\); 1 backup\(s\) recorded", done["evidence"])


# ------------------------------------------------------------------ pages and exports

HOSTILE = '<script>alert("owned")</script><img src=x onerror=alert(1)>'


class Hostile:
    @hookimpl
    def compliance_controls(self) -> list[Control]:
        return [Control("evil.<script>", f"title {HOSTILE}", "pending", f"evidence {HOSTILE}",
                        {"GDPR": (HOSTILE,)})]


class Elements(HTMLParser):
    """Every start tag, with the tag names inside <main> apart."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.in_main: list[str] = []
        self._main = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if self._main:
            self.in_main.append(tag)
        self._main = self._main or tag == "main"

    def handle_endtag(self, tag: str) -> None:
        if tag == "main":
            self._main = False


def elements(html: str) -> Elements:
    parser = Elements()
    parser.feed(html)
    return parser


async def test_pages_escape_what_plugins_report(make_client: Callable[..., Any]) -> None:
    async with make_client(plugins=(Hostile(),)) as (bs, client):
        page = await client.get("/ui/compliance")
        export = await client.get("/ui/compliance/report.html")
    assert page.status_code == 200 and export.status_code == 200
    shown = elements(page.text)
    assert "main" in shown.tags and "table" in shown.in_main
    assert "script" not in shown.in_main and "img" not in shown.in_main
    assert "evidence &lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in page.text
    saved = elements(export.text)
    assert "script" not in saved.tags and "img" not in saved.tags
    assert "evidence &lt;script&gt;" in export.text
    assert "script-src" not in export.headers["content-security-policy"]
    assert "default-src 'none'" in export.headers["content-security-policy"]


async def test_the_page_shows_every_control_and_framework(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, client):
        body = await report(client)
        page = await client.get("/ui/compliance")
    for c in body["controls"]:
        assert f'data-control="{c["id"]}"' in page.text
    assert 'data-framework="SOC 2"' in page.text
    assert 'href="/ui/compliance/report.pdf"' in page.text
    assert 'href="/ui/compliance/report.html"' in page.text
    assert '<a href="/ui/compliance">Compliance</a>' in page.text  # the header's link


async def test_without_the_report_plugin_pages_render_without_its_link(
        make_client: Callable[..., Any]) -> None:
    async with make_client(disabled_plugins=("compliance",)) as (bs, client):
        page = await client.get("/ui/audit")
        gone = await client.get(REPORT)
    assert page.status_code == 200 and 'href="/ui/audit"' in page.text
    assert "/ui/compliance" not in page.text
    assert gone.status_code == 404


def pdf_text(data: bytes) -> bytes:
    """The content streams of a PDF, inflated when compressed."""
    out = []
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        raw = match.group(1)
        try:
            out.append(zlib.decompress(raw))
        except zlib.error:
            out.append(raw)
    return b"\n".join(out)


async def test_exports_are_downloads_of_html_and_pdf(make_client: Callable[..., Any]) -> None:
    async with make_client(plugins=(Hostile(),)) as (bs, client):
        body = await report(client)
        html = await client.get("/ui/compliance/report.html")
        pdf = await client.get("/ui/compliance/report.pdf")
    day = body["report_date"][:10]
    assert html.headers["content-type"].startswith("text/html")
    assert html.headers["content-disposition"] == (
        f'attachment; filename="compliance-report-{day}.html"')
    assert html.text.startswith("<!DOCTYPE html>") and "<style>" in html.text
    assert 'rel="stylesheet"' not in html.text  # self-contained
    for c in body["controls"]:
        assert f"<code>{c['id']}</code>" in html.text.replace("&lt;", "<").replace("&gt;", ">")
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == (
        f'attachment; filename="compliance-report-{day}.pdf"')
    assert pdf.content.startswith(b"%PDF-") and pdf.content.rstrip().endswith(b"%%EOF")
    text = pdf_text(pdf.content)
    for c in body["controls"]:
        assert f"Control {c['id']}".encode() in text, c["id"]
    assert b"Compliance report" in text and b"GDPR: partially compliant" in text
