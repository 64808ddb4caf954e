"""The administration pages: users, roles and one's API tokens, administered from the
browser with the same rules as the API, each page closed to those lacking its permission,
refusals shown in place, a new token's secret shown once, forms of a session needing its
CSRF token."""
from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from html import unescape
from html.parser import HTMLParser
from typing import Any

import httpx

from baseshift.core.access import Grant
from baseshift.core.app.application import BaseShift
from baseshift.plugins.auth.state import AUTH
from tests.auth_support import api_token_for, bearer, token_for

PASSWORD = "correct horse battery staple"
USERS, ROLES, TOKENS = "/ui/admin/users", "/ui/admin/roles", "/ui/tokens"
SECRET = re.compile(r"bsat_[A-Za-z0-9_-]{20,}")


@asynccontextmanager
async def _client(admin: httpx.AsyncClient, headers: dict[str, str] | None = None
                  ) -> AsyncIterator[httpx.AsyncClient]:
    """Another client of the app `admin` calls, with other credentials (or none)."""
    app = admin._transport.app  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), headers=headers,
                                 base_url="http://localhost") as client:
        yield client


@asynccontextmanager
async def _as_role(bs: BaseShift, admin: httpx.AsyncClient, role: str
                   ) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(admin, bearer(await token_for(bs, role))) as client:
        yield client


def _text(html: str) -> str:
    """The page as a reader sees it: no tags, entities decoded, spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _row_html(html: str, row_id: str) -> str:
    found = re.search(rf'<tr id="{re.escape(row_id)}">(.*?)</tr>', html, re.S)
    assert found, f"no row {row_id}"
    return found.group(1)


def _row(html: str, row_id: str) -> str:
    return _text(_row_html(html, row_id))


def _cell(html: str, row_id: str, name: str) -> str:
    found = re.search(rf'class="{re.escape(name)}">(.*?)</td>', _row_html(html, row_id), re.S)
    assert found, f"no cell {name} in row {row_id}"
    return _text(found.group(1))


def _panel(html: str, role: str) -> str:
    """The text of a role's panel on the roles page."""
    return _text(html.split(f'id="role-{role}"')[1].split('class="panel"')[0])


async def _post(client: httpx.AsyncClient, path: str, **fields: str) -> httpx.Response:
    return await client.post(path, data=fields)


class PolicyCheck(HTMLParser):
    """What a Content-Security-Policy without 'unsafe-inline' refuses: inline scripts,
    style elements and attributes, event handlers, javascript: URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        self._in_script = tag == "script" and not named.get("src")
        if tag == "style":
            self.found.append("<style>")
        for name, value in attrs:
            if name.startswith("on") or name == "style" or name.startswith("hx-on"):
                self.found.append(f"<{tag} {name}>")
            if (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}=javascript:>")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.found.append("inline script")


def _policy_problems(html: str) -> list[str]:
    check = PolicyCheck()
    check.feed(html)
    check.close()
    return check.found


def test_the_policy_check_finds_inline_code_and_style() -> None:
    for snippet in ("<script>go()</script>", '<p style="color: red">', "<style>p{}</style>",
                    '<button onclick="go()">', '<a href="javascript:go()">'):
        assert _policy_problems(snippet), snippet
    assert _policy_problems('<script src="/static/x.js"></script><p class="a">') == []


# --------------------------------------------------------------------------- access


async def test_each_page_renders_for_its_role_and_the_admin_pages_refuse_a_viewer(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, admin), _as_role(bs, admin, "viewer") as viewer:
        pages = {path: await admin.get(path) for path in (USERS, ROLES, TOKENS)}
        refused = [await viewer.get(path) for path in (USERS, ROLES)]
        refused_forms = [await _post(viewer, USERS, do="create", name="eve", roles="admin"),
                         await _post(viewer, ROLES, do="delete", name="viewer")]
        own_tokens = await viewer.get(TOKENS)
        users = [u.name for u in await bs.store.list_users()]  # type: ignore[attr-defined]
        permissions = list(bs.stash[AUTH].permissions.values())
    assert {p: r.status_code for p, r in pages.items()} == dict.fromkeys(pages, 200)
    assert [r.status_code for r in (*refused, *refused_forms)] == [403] * 4
    assert "eve" not in users
    assert own_tokens.status_code == 200  # tokens:own is every builtin role's
    roles_page = _text(pages[ROLES].text)
    assert permissions and all(p.name in roles_page and p.summary in roles_page
                               for p in permissions)
    assert "admin-tester" in _row(pages[USERS].text, "user-admin-tester")
    assert pages[USERS].headers["cache-control"] == "no-store"


async def test_the_pages_and_their_answers_pass_the_content_security_policy(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, admin):
        await _post(admin, ROLES, do="save", form="save", name="starter",
                    **{"permission:runs:read": "on"})
        await _post(admin, USERS, do="create", form="create", name="ann", password=PASSWORD,
                    roles="starter")
        pages = {path: (await admin.get(path)).text for path in (USERS, ROLES, TOKENS)}
        pages["refused"] = (await _post(admin, USERS, do="create", form="create",
                                        name="ann", roles="nope")).text
        pages["new token"] = (await _post(admin, TOKENS, do="create", form="create",
                                          name="ci", roles="viewer")).text
    assert {page: problems for page, html in pages.items()
            if (problems := _policy_problems(html))} == {}
    assert "starter" in pages[ROLES] and "ann" in pages[USERS]


# --------------------------------------------------------------------------- users


async def test_an_admin_creates_disables_regrants_and_resets_a_user(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, admin):
        accounts = bs.stash[AUTH].accounts
        made = await _post(admin, USERS, do="create", form="create", name="ann",
                           password=PASSWORD, temporary="true",
                           roles="viewer, operator:payments.*")
        assert made.status_code == 303 and made.headers["location"] == USERS
        listed = (await admin.get(USERS)).text
        assert _cell(listed, "user-ann", "user-roles") == "viewer, operator:payments.*"
        assert _cell(listed, "user-ann", "user-must-change") == "yes"
        assert _cell(listed, "user-ann", "user-disabled") == "no"
        ann = await accounts.user("ann")
        assert ann.must_change_password and not ann.disabled
        assert await accounts.store.grants_of(ann.id) == [
            Grant("viewer"), Grant("operator", "payments.*")]

        await _post(admin, USERS, do="disable", form="user:ann", name="ann")
        assert _cell((await admin.get(USERS)).text, "user-ann", "user-disabled") == "disabled"
        assert (await accounts.user("ann")).disabled
        await _post(admin, USERS, do="enable", form="user:ann", name="ann")
        assert not (await accounts.user("ann")).disabled

        regranted = await _post(admin, USERS, do="roles", form="user:ann", name="ann",
                                roles="author")
        assert regranted.status_code == 303
        assert await accounts.store.grants_of(ann.id) == [Grant("author")]
        assert _cell((await admin.get(USERS)).text, "user-ann", "user-roles") == "author"

        await _post(admin, USERS, do="password", form="user:ann", name="ann",
                    password="another long passphrase")
        assert not (await accounts.user("ann")).must_change_password
        await _post(admin, USERS, do="password", form="user:ann", name="ann",
                    password="a third long passphrase", temporary="true")
        assert (await accounts.user("ann")).must_change_password

        await accounts.add_user("cy", None, [Grant("viewer")], totp=True)
        assert _cell((await admin.get(USERS)).text, "user-cy", "user-mfa") == "enrolled"
        await _post(admin, USERS, do="reset-mfa", form="user:cy", name="cy")
        cy = await accounts.user("cy")
        assert cy.totp_secret is None and not cy.totp_confirmed
        assert _cell((await admin.get(USERS)).text, "user-cy", "user-mfa") == "no"


async def test_a_refused_user_form_is_shown_in_place_keeping_what_was_typed(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, admin):
        unknown_role = await _post(admin, USERS, do="create", form="create", name="bob",
                                   password=PASSWORD, roles="viewer, nope")
        short = await _post(admin, USERS, do="create", form="create", name="bob",
                            password="short", roles="viewer")
        await _post(admin, USERS, do="create", form="create", name="ann", roles="viewer")
        regrant = await _post(admin, USERS, do="roles", form="user:ann", name="ann",
                              roles="viewer, :x")
        nobody = await _post(admin, USERS, do="disable", form="user:nobody", name="nobody")
        users = [u.name for u in await bs.store.list_users()]  # type: ignore[attr-defined]
    assert [r.status_code for r in (unknown_role, short, regrant, nobody)] == [422] * 4
    assert "bob" not in users
    form = unknown_role.text.split('id="new-user-heading"')[1]
    assert "there is no role 'nope'" in _text(form)
    assert 'value="bob"' in form and 'value="viewer, nope"' in form
    assert PASSWORD not in unknown_role.text
    assert "password refused" in _text(short.text.split('id="new-user-heading"')[1])
    assert "':x' is not ROLE or ROLE:WORKFLOW-PATTERN" in _row(regrant.text, "user-ann")
    assert 'value="viewer, :x"' in regrant.text
    assert "there is no user 'nobody'" in _text(nobody.text.split('id="users-heading"')[0])


# --------------------------------------------------------------------------- roles


async def test_a_custom_role_gets_the_checked_permissions_and_is_granted(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, admin):
        state = bs.stash[AUTH]
        saved = await _post(admin, ROLES, do="save", form="save", name="starter",
                            summary="starts runs",
                            **{"permission:runs:start": "on", "permission:runs:read": "on"})
        assert saved.status_code == 303 and saved.headers["location"] == ROLES
        role = (await state.accounts.roles())["starter"]
        assert role.permissions == {"runs:start", "runs:read"} and not role.builtin
        page = (await admin.get(ROLES)).text
        assert "starts runs" in page and 'id="role-starter"' in page

        await _post(admin, USERS, do="create", form="create", name="sam", roles="starter")
        _, secret = await state.logins.create_api_token("sam", "t", [Grant("starter")], None)
        async with _client(admin, bearer(secret)) as sam:
            started = await sam.post("/api/v1/workflows", json={"workflow": "hello"})
            assert started.status_code == 201, started.text
            assert (await sam.get(USERS)).status_code == 403

        await _post(admin, ROLES, do="mfa", form="role:starter", name="starter", mfa="true")
        assert (await state.accounts.roles())["starter"].mfa
        assert "Second factor: required" in _panel((await admin.get(ROLES)).text, "starter")
        await _post(admin, ROLES, do="save", form="role:starter", name="starter",
                    mfa="true", **{"permission:runs:read": "on"})
        assert (await state.accounts.roles())["starter"].permissions == {"runs:read"}
        deleted = await _post(admin, ROLES, do="delete", form="role:starter", name="starter")
        assert deleted.status_code == 303
        assert "starter" not in await state.accounts.roles()
        assert 'id="role-starter"' not in (await admin.get(ROLES)).text


async def test_builtin_roles_keep_their_permissions_and_the_page_says_so(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, admin):
        accounts = bs.stash[AUTH].accounts
        widened = await _post(admin, ROLES, do="save", form="save", name="viewer",
                              **{"permission:runs:start": "on"})
        deleted = await _post(admin, ROLES, do="delete", form="role:admin", name="admin")
        unknown = await _post(admin, ROLES, do="save", form="save", name="odd",
                              **{"permission:runs:fly": "on"})
        mfa = await _post(admin, ROLES, do="mfa", form="role:operator", name="operator",
                          mfa="true")
        roles = await accounts.roles()
    assert (widened.status_code, deleted.status_code, unknown.status_code) == (422, 422, 422)
    new_role_form = _text(widened.text.split('id="new-role-heading"')[1])
    assert "the builtin role 'viewer' keeps its permissions" in new_role_form
    assert "make a custom role" in new_role_form
    assert "the builtin role 'admin' cannot be deleted" in _panel(deleted.text, "admin")
    assert "cannot be deleted" not in _text(deleted.text.split('id="role-admin"')[0])
    assert "unknown permission(s): runs:fly" in _text(unknown.text)
    assert "runs:start" not in roles["viewer"].permissions and "odd" not in roles
    assert mfa.status_code == 303 and roles["operator"].mfa and roles["operator"].builtin


# --------------------------------------------------------------------------- tokens


async def test_a_new_tokens_secret_is_shown_once_and_never_listed_and_revoke_ends_it(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, admin):
        made = await _post(admin, TOKENS, do="create", form="create", name="ci",
                           roles="viewer", expires_days="7")
        assert made.status_code == 201 and made.url.path == TOKENS
        secrets = SECRET.findall(made.text)
        assert len(secrets) == 1
        secret = secrets[0]
        assert made.headers["cache-control"] == "no-store"
        listing = (await admin.get(TOKENS)).text
        assert "ci" in listing and secret not in listing and not SECRET.search(listing)
        store = bs.stash[AUTH].accounts.store
        record = next(t for t in await store.list_api_tokens() if t.name == "ci")
        assert record.expires_at is not None
        assert record.expires_at - record.created_at == 7 * 86400
        assert record.token_hash != secret and record.grants == (Grant("viewer"),)
        async with _client(admin, bearer(secret)) as ci:
            assert (await ci.get("/api/v1/workflows")).status_code == 200
            revoked = await _post(admin, TOKENS, do="revoke", form=f"token:{record.id}",
                                  token=record.id)
            assert revoked.status_code == 303 and revoked.headers["location"] == TOKENS
            assert (await ci.get("/api/v1/workflows")).status_code == 401
        listing = (await admin.get(TOKENS)).text
        assert _cell(listing, f"token-{record.id}", "token-revoked") != "—"
        assert "Revoke" not in _row(listing, f"token-{record.id}")


async def test_a_token_gets_no_role_beyond_its_users_and_refusals_show_in_place(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, admin), _as_role(bs, admin, "viewer") as viewer:
        wider = await _post(viewer, TOKENS, do="create", form="create", name="wide",
                            roles="admin")
        expiry = await _post(viewer, TOKENS, do="create", form="create", name="soon",
                             roles="viewer", expires_days="-1")
        nameless = await _post(viewer, TOKENS, do="create", form="create", name=" ",
                               roles="viewer")
        accounts = bs.stash[AUTH].accounts
        owner = await accounts.user("admin-tester")
        await api_token_for(bs, "admin")  # someone else's token, named "tests"
        other = (await accounts.store.list_api_tokens(owner.id))[0]
        foreign = await _post(viewer, TOKENS, do="revoke", form=f"token:{other.id}",
                              token=other.id)
        tokens = await accounts.store.list_api_tokens()
    assert wider.status_code == 403 and "which you do not hold" in _text(
        wider.text.split('id="new-token-heading"')[1])
    assert 'value="wide"' in wider.text and not SECRET.search(wider.text)
    assert expiry.status_code == 422 and "not a positive number of days" in _text(expiry.text)
    assert nameless.status_code == 422 and "a token needs a name" in _text(nameless.text)
    assert foreign.status_code == 403 and "tokens:admin" in _text(foreign.text)
    assert {t.name for t in tokens} == {"tests"}
    assert all(t.revoked_at is None for t in tokens)


# --------------------------------------------------------------------------- sessions


async def test_a_session_form_without_its_csrf_token_is_refused(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, admin), _client(admin) as browser:
        await bs.stash[AUTH].accounts.add_user("olga", PASSWORD, [Grant("operator")])
        signed_in = await browser.post("/ui/login", data={
            "username": "olga", "password": PASSWORD, "next": TOKENS})
        assert signed_in.status_code == 303, signed_in.text
        page = await browser.get(TOKENS)
        assert page.status_code == 200 and "olga" in page.text
        found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
        assert found
        form = {"do": "create", "form": "create", "name": "laptop", "roles": "viewer"}
        refused = await browser.post(TOKENS, data=form)
        made = await browser.post(TOKENS, data={**form, "csrf_token": found.group(1)})
        names = [t.name for t in await bs.stash[AUTH].accounts.store.list_api_tokens()]
    assert refused.status_code == 403 and refused.json()["code"] == "request.csrf"
    assert made.status_code == 201 and SECRET.search(made.text)
    assert names.count("laptop") == 1
