"""The UI's audit page (`/ui/audit`): closed to those lacking `audit:read` (a browser that is
not signed in goes to the sign-in page), the entries listed newest first with hostile values
shown as text, never as markup; its filters and its "Older entries" link."""
from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

import httpx

from baseshift.core.app.application import BaseShift
from baseshift.core.audit import verify
from baseshift.plugins.auth.state import AUTH
from tests.auth_support import bearer, token_for
from tests.web.api_support import API, finished, start
from tests.web.audit_support import ADDRESS, client_of, trail

PAGE = "/ui/audit"
HTML = {"Accept": "text/html"}
SCRIPT = "<script>alert(1)</script>"
IMAGE = '"><img src=x onerror=alert(2)>'


class Markup(HTMLParser):
    """The tags of a page: every script must be a file (`src`), no attribute may be an
    event handler, and no `img` may appear (the page shows none of its own)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.found.append("inline script")
        if tag == "img":
            self.found.append("img")
        self.found.extend(f"{tag} {name}" for name in names if name.startswith("on"))


def injected(html: str) -> list[str]:
    parser = Markup()
    parser.feed(html)
    return parser.found


def rows(html: str) -> list[dict[str, str]]:
    """The table's entries as a reader sees them: cell text by column label."""
    body = html.split('<table class="responsive" id="audit">')[1].split("</table>")[0]
    out = []
    for tr in re.findall(r'<tr class="outcome-[a-z]+">(.*?)</tr>', body, re.S):
        cells = re.findall(r'<td data-label="([^"]+)">(.*?)</td>', tr, re.S)
        out.append({label: " ".join(unescape(re.sub(r"<[^>]+>", " ", cell)).split())
                    for label, cell in cells})
    return out


def older_link(html: str) -> str | None:
    found = re.search(r'<a id="older" href="([^"]+)">Older entries</a>', html)
    return unescape(found.group(1)) if found else None


async def page(client: httpx.AsyncClient, url: str = PAGE, **params: Any) -> str:
    response = await client.get(url, params=params or None, headers=HTML)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    return response.text


async def test_a_browser_not_signed_in_goes_to_the_sign_in_page(
        make_client: Callable[..., Any]) -> None:
    async with make_client(role=None) as (bs, anonymous):
        browser = await anonymous.get(PAGE, headers=HTML)
        htmx = await anonymous.get(PAGE, headers={"HX-Request": "true"})
        script = await anonymous.get(PAGE)
    assert browser.status_code == 303
    assert browser.headers["location"] == f"/ui/login?next={quote(PAGE, safe='')}"
    assert htmx.status_code == 401 and htmx.headers["hx-redirect"].startswith("/ui/login")
    assert script.status_code == 401
    assert script.headers["content-type"] == "application/problem+json"


async def test_only_administrators_see_the_link_to_the_page(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, admin):
        app = admin._transport.app  # type: ignore[attr-defined]
        dashboard = await page(admin, "/")
        async with client_of(app, bearer(await token_for(bs, "viewer"))) as viewer:
            theirs = await page(viewer, "/")
            refused = await viewer.get(PAGE, headers=HTML)
    assert f'href="{PAGE}"' in dashboard and f'href="{PAGE}"' not in theirs
    assert refused.status_code == 403 and "audit:read" in refused.text
    assert refused.headers["content-type"].startswith("text/html")


async def hostile_trail(bs: BaseShift, app: Any) -> dict[str, str]:
    """A refused sign-in by a user named like a script, a refused cancel of a run whose id
    is an image tag, and an API token with such a name reloading the workflows; the request
    ids of the last two."""
    async with client_of(app) as anonymous, \
            client_of(app, bearer(await token_for(bs, "viewer"))) as viewer, \
            client_of(app, bearer(await token_for(bs, "admin"))) as admin:
        refused = await anonymous.post(f"{API}/auth/login", json={
            "username": SCRIPT, "password": "x"})
        assert refused.status_code == 401
        cancel = await viewer.post(f"{API}/workflows/{quote(IMAGE, safe='')}/cancel")
        assert cancel.status_code == 403, cancel.text
        made = await admin.post(f"{API}/auth/tokens", json={"name": IMAGE,
                                                            "roles": ["author"]})
        assert made.status_code == 201, made.text
        async with client_of(app, bearer(made.json()["token"])) as token:
            reload = await token.post(f"{API}/definitions/reload")
            assert reload.status_code == 200
    return {"cancel": cancel.headers["x-request-id"],
            "reload": reload.headers["x-request-id"]}


async def test_hostile_values_are_shown_as_text(make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, admin):
        ids = await hostile_trail(bs, admin._transport.app)  # type: ignore[attr-defined]
        html = await page(admin)
        filtered = await page(admin, actor=f"admin-tester/{IMAGE}", resource=f"user:{SCRIPT}")
        older = await page(admin, limit=1, actor=IMAGE + SCRIPT)
    assert injected(html) == [] and injected(filtered) == [] and injected(older) == []
    assert SCRIPT not in html and "<img" not in html
    listed = rows(html)
    reload, token, cancel, login = listed[:4]
    assert (reload["Actor"], reload["Action"], reload["Resource"]) == (
        f"admin-tester/{IMAGE}", "workflows.reload", "server:workflows")
    assert reload["Client"] == f"{ADDRESS} {ids['reload']}"
    assert (token["Action"], f"name={IMAGE}" in token["Detail"]) == ("token.create", True)
    assert (cancel["Actor"], cancel["Action"], cancel["Resource"], cancel["Outcome"]) == (
        "viewer-tester", "access.denied", f"run:{IMAGE}", "denied")
    assert f"path=/api/v1/workflows/{IMAGE}/cancel" in cancel["Detail"]
    assert cancel["Client"] == f"{ADDRESS} {ids['cancel']}"
    assert (login["Actor"], login["Action"], login["Resource"], login["Outcome"]) == (
        "anonymous", "auth.login", f"user:{SCRIPT}", "failure")
    # the filter form shows the values it was given, as values
    assert rows(filtered) == [] and SCRIPT not in filtered and "<img" not in filtered
    assert 'value="admin-tester/&#34;&gt;&lt;img src=x onerror=alert(2)&gt;"' in filtered


async def test_filters_and_the_older_entries_link(make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, admin):
        accounts = bs.stash[AUTH].accounts
        for n in range(55):  # more than a page of 50
            await accounts.add_user(f"user{n}", None, [])
        await finished(admin, await start(admin, "hello"))
        await finished(admin, await start(admin, "hello"))
        everything = await trail(admin)

        first = await page(admin)
        assert [int(r["#"]) for r in rows(first)] == [e["seq"] for e in everything[:50]]
        walked = [int(r["#"]) for r in rows(first)]
        link = older_link(first)
        while link is not None:
            assert link.startswith(f"{PAGE}?")
            html = await page(admin, link)
            walked.extend(int(r["#"]) for r in rows(html))
            link = older_link(html)
        assert walked == [e["seq"] for e in everything]

        small = await page(admin, limit=2, action="user.create")
        shown = [r["Resource"] for r in rows(small)]
        assert shown == ["user:user54", "user:user53"]
        link = older_link(small)
        assert link is not None
        next_page = rows(await page(admin, link))
        assert [r["Resource"] for r in next_page] == ["user:user52", "user:user51"]
        assert {r["Action"] for r in next_page} == {"user.create"}

        runs = rows(await page(admin, resource="run:"))
        assert [r["Action"] for r in runs] == ["run.start", "run.start"]
        assert {r["Actor"] for r in runs} == {"admin-tester"}
        by_actor = rows(await page(admin, actor="admin-tester", action="run.start"))
        assert by_actor == runs
        assert rows(await page(admin, action="role.delete")) == []
        assert "No entries match." in await page(admin, action="role.delete")
        bad = await admin.get(PAGE, params={"since": "garbage"}, headers=HTML)
        assert bad.status_code == 400 and "since" in bad.text
        assert bad.headers["content-type"].startswith("text/html")
        checked, broken = await verify(bs.store)  # type: ignore[arg-type]
    assert broken is None and checked == everything[0]["seq"]
