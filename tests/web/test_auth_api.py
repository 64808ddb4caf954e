"""The auth API as a client meets it: sign-in with password and TOTP, token pairs that
rotate, a reused refresh token ending the session, API tokens, and the attacks a network
neighbour would try (forged, expired or replayed tokens; guessing; no credentials)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import pyotp
import pytest
from cryptography.hazmat.primitives import serialization

from baseshift.core.access import Grant
from baseshift.core.appface import App
from baseshift.plugins.auth.state import AUTH
from tests.auth_support import bearer
from tests.web.api_support import API, finished, job_in, start

PASSWORD = "correct horse battery staple"
PROBLEM = "application/problem+json"


async def add_user(bs: App, name: str, role: str = "operator", *, totp: bool = False,
                   temporary: bool = False) -> str | None:
    """A user with a password (and TOTP); returns the TOTP secret."""
    user, _ = await bs.stash[AUTH].accounts.add_user(name, PASSWORD, [Grant(role)],
                                                     temporary=temporary, totp=totp)
    return user.totp_secret


@asynccontextmanager
async def anonymous(make_client: Callable[..., Any], **kw: Any
                    ) -> AsyncIterator[tuple[App, httpx.AsyncClient]]:
    async with make_client(role=None, **kw) as served:
        yield served


async def login(client: httpx.AsyncClient, name: str, password: str = PASSWORD,
                totp: str | None = None) -> httpx.Response:
    body = {"username": name, "password": password}
    if totp is not None:
        body["totp_token"] = totp
    return await client.post(f"{API}/auth/login", json=body)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    return body


async def test_login_answers_the_seed_shape_and_the_token_works(
        make_client: Callable[..., Any]) -> None:
    async with anonymous(make_client) as (bs, client):
        await add_user(bs, "ann")
        response = await login(client, "ann")
        assert response.status_code == 200, response.text
        pair = response.json()
        assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in"}
        assert pair["token_type"] == "Bearer" and pair["expires_in"] == 900
        header = jwt.get_unverified_header(pair["access_token"])
        assert header["alg"] == "EdDSA" and header["kid"]
        me = await client.get(f"{API}/auth/user", headers=bearer(pair["access_token"]))
        assert me.status_code == 200, me.text
        assert me.json()["name"] == "ann"
        assert me.json()["roles"] == [{"role": "operator", "scope": "*"}]
        assert "runs:start" in me.json()["permissions"]
        assert "templates:publish" not in me.json()["permissions"]
        keys = (await client.get("/.well-known/jwks.json")).json()["keys"]
        assert [k["kid"] for k in keys] == [header["kid"]]
        assert all("d" not in k for k in keys)  # public halves only


async def test_unknown_user_and_wrong_password_get_the_same_answer(
        make_client: Callable[..., Any]) -> None:
    async with anonymous(make_client) as (bs, client):
        await add_user(bs, "ann")
        wrong = problem(await login(client, "ann", "not the password at all"), 401)
        unknown = problem(await login(client, "nobody", "not the password at all"), 401)
        assert wrong["detail"] == unknown["detail"] == "wrong user name or password"


def frozen_throttle(bs: App, at: float) -> None:
    """The throttle's clock stopped at `at`, before the test's failures: a wait is then
    never over, however slowly the test runs."""
    bs.stash[AUTH].logins.throttle.clock = lambda: at


async def test_failed_logins_are_throttled(make_client: Callable[..., Any]) -> None:
    async with anonymous(make_client) as (bs, client):
        frozen_throttle(bs, time.time())
        await add_user(bs, "ann")
        for _ in range(5):
            problem(await login(client, "ann", "guess guess guess"), 401)
        throttled = problem(await login(client, "ann"), 429)  # even the right password
        assert throttled["code"] == "auth.throttled"
        for _ in range(30):  # hammering while throttled neither counts nor lifts it
            problem(await login(client, "ann"), 429)


async def test_a_fleet_throttles_together(make_client: Callable[..., Any],
                                          tmp_path: Path) -> None:
    """Two servers on one database: failures on one count on the other (and a restart
    forgets none), since both read them from the shared audit trail."""
    shared = {"store": "sqlite", "templates": "sqlite", "data_dir": tmp_path / "fleet"}
    start = time.time()
    async with anonymous(make_client, **shared) as (bs, one):
        frozen_throttle(bs, start)
        await add_user(bs, "ann")
        for _ in range(3):
            problem(await login(one, "ann", "guess guess guess"), 401)
        async with anonymous(make_client, **shared) as (other, two):
            frozen_throttle(other, start)
            for _ in range(2):
                problem(await login(two, "ann", "guess guess guess"), 401)
            problem(await login(two, "ann"), 429)
            problem(await login(one, "ann"), 429)
    async with anonymous(make_client, **shared) as (again, restarted):
        frozen_throttle(again, start)
        problem(await login(restarted, "ann"), 429)


async def test_other_addresses_and_names_are_not_throttled(
        make_client: Callable[..., Any]) -> None:
    async with anonymous(make_client) as (bs, client):
        frozen_throttle(bs, time.time())
        await add_user(bs, "ann")
        await add_user(bs, "bob")
        for _ in range(5):
            problem(await login(client, "ann", "guess guess guess"), 401)
        problem(await login(client, "ann"), 429)
        app = client._transport.app  # type: ignore[attr-defined]
        elsewhere = httpx.AsyncClient(base_url="http://localhost", transport=httpx.ASGITransport(
            app=app, client=("198.51.100.9", 4000)))
        async with elsewhere:
            problem(await login(elsewhere, "ann"), 429)  # the name waits everywhere
            assert (await login(elsewhere, "bob")).status_code == 200
        problem(await login(client, "bob"), 429)  # this address waits for every name


async def test_totp_is_required_once_enrolled_and_a_code_is_good_once(
        make_client: Callable[..., Any]) -> None:
    async with anonymous(make_client) as (bs, client):
        secret = await add_user(bs, "ann", totp=True)
        assert secret is not None
        problem(await login(client, "ann"), 401)
        code = pyotp.TOTP(secret).now()
        assert (await login(client, "ann", totp=code)).status_code == 200
        problem(await login(client, "ann", totp=code), 401)  # replayed


async def test_refresh_rotates_and_reuse_revokes_the_whole_family(
        make_client: Callable[..., Any]) -> None:
    async with anonymous(make_client) as (bs, client):
        await add_user(bs, "ann")
        first = (await login(client, "ann")).json()
        second = await client.post(f"{API}/auth/refresh",
                                   json={"refresh_token": first["refresh_token"]})
        assert second.status_code == 200, second.text
        newer = second.json()["refresh_token"]
        assert newer != first["refresh_token"]
        stolen = await client.post(f"{API}/auth/refresh",
                                   json={"refresh_token": first["refresh_token"]})
        problem(stolen, 401)
        problem(await client.post(f"{API}/auth/refresh", json={"refresh_token": newer}), 401)


async def test_logout_revokes_the_refresh_token(make_client: Callable[..., Any]) -> None:
    async with anonymous(make_client) as (bs, client):
        await add_user(bs, "ann")
        pair = (await login(client, "ann")).json()
        out = await client.post(f"{API}/auth/logout",
                                json={"refresh_token": pair["refresh_token"]})
        assert out.status_code == 204
        problem(await client.post(f"{API}/auth/refresh",
                                  json={"refresh_token": pair["refresh_token"]}), 401)


async def test_a_session_ended_ends_its_access_tokens_at_once(
        make_client: Callable[..., Any]) -> None:
    """Signing out, a password set by an administrator and an MFA reset each end the
    session's access tokens now, not when they expire (15 minutes later)."""
    async with anonymous(make_client) as (bs, client):
        await add_user(bs, "ann")
        for end in ("logout", "password", "reset-mfa"):
            pair = (await login(client, "ann")).json()
            token = pair["access_token"]
            assert (await client.get(f"{API}/auth/user", headers=bearer(token))).status_code == 200
            accounts = bs.stash[AUTH].accounts
            if end == "logout":
                await client.post(f"{API}/auth/logout", json={"refresh_token":
                                                             pair["refresh_token"]})
            elif end == "password":
                await accounts.set_password("ann", PASSWORD, temporary=False)
            else:
                await accounts.reset_mfa("ann")
            refused = problem(await client.get(f"{API}/auth/user", headers=bearer(token)), 401)
            assert "session has ended" in refused["detail"], end


async def test_a_temporary_password_must_be_changed_first(
        make_client: Callable[..., Any]) -> None:
    async with anonymous(make_client) as (bs, client):
        await add_user(bs, "ann", temporary=True)
        refused = problem(await login(client, "ann"), 403)
        assert refused["code"] == "auth.password-change-required"
        changed = await client.post(f"{API}/auth/password", json={
            "username": "ann", "password": PASSWORD,
            "new_password": "a much longer passphrase now"})
        assert changed.status_code == 200, changed.text
        assert (await login(client, "ann", "a much longer passphrase now")).status_code == 200


async def test_admin_role_requires_mfa_enrolment(make_client: Callable[..., Any]) -> None:
    async with anonymous(make_client) as (bs, client):
        await add_user(bs, "root", role="admin")
        refused = problem(await login(client, "root"), 403)
        assert refused["code"] == "auth.mfa-enrolment-required"


# ------------------------------------------------------------------ token attacks


async def _access(bs: App, client: httpx.AsyncClient) -> str:
    await add_user(bs, "ann")
    token: str = (await login(client, "ann")).json()["access_token"]
    return token


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def _public_pem(bs: App) -> bytes:
    keys = await bs.store.signing_keys()  # type: ignore[attr-defined]
    private = serialization.load_pem_private_key(keys[-1].private_pem.encode(), None)
    return private.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("attack", ["none", "hs256-with-public-key", "tampered", "unknown-kid",
                                    "expired", "not-yet-valid", "garbage"])
async def test_forged_or_stale_access_tokens_are_refused(
        make_client: Callable[..., Any], attack: str) -> None:
    async with anonymous(make_client) as (bs, client):
        token = await _access(bs, client)
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
        now = int(time.time())
        if attack == "none":
            forged = f"{_b64({'alg': 'none', 'typ': header.get('typ'), 'kid': header['kid']})}" \
                     f".{_b64(claims)}."
        elif attack == "hs256-with-public-key":
            # by hand: PyJWT itself refuses a PEM key as an HMAC secret
            signed = f"{_b64({**header, 'alg': 'HS256'})}.{_b64(claims)}"
            mac = hmac.new(await _public_pem(bs), signed.encode(), hashlib.sha256).digest()
            forged = f"{signed}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
        elif attack == "tampered":
            head, _, signature = token.split(".")
            forged = f"{head}.{_b64({**claims, 'sub': 'someone-else'})}.{signature.split('.')[-1]}"
        elif attack == "unknown-kid":
            head, body, signature = token.split(".")
            forged = f"{_b64({**header, 'kid': 'not-a-key'})}.{body}.{signature}"
        elif attack in ("expired", "not-yet-valid"):
            keys = await bs.store.signing_keys()  # type: ignore[attr-defined]
            shift = {"exp": now - 3600, "iat": now - 7200, "nbf": now - 7200} \
                if attack == "expired" else {"nbf": now + 3600, "iat": now + 3600,
                                             "exp": now + 7200}
            forged = jwt.encode({**claims, **shift}, keys[-1].private_pem, algorithm="EdDSA",
                                headers={"kid": header["kid"], "typ": header.get("typ")})
        else:
            forged = "not.a.token"
        refused = problem(await client.get(f"{API}/workflows", headers=bearer(forged)), 401)
        assert refused["code"] == "auth.unauthorized"


async def test_tokens_of_a_disabled_user_stop_working(make_client: Callable[..., Any]) -> None:
    async with anonymous(make_client) as (bs, client):
        token = await _access(bs, client)
        assert (await client.get(f"{API}/workflows", headers=bearer(token))).status_code == 200
        await bs.stash[AUTH].accounts.set_disabled("ann", True)
        problem(await client.get(f"{API}/workflows", headers=bearer(token)), 401)


async def test_a_malformed_authorization_header_is_refused_not_ignored(
        make_client: Callable[..., Any]) -> None:
    async with anonymous(make_client) as (bs, client):
        for header in ("Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer bsat_unknown"):
            problem(await client.get(f"{API}/workflows",
                                     headers={"Authorization": header}), 401)


# ------------------------------------------------------------------ API tokens


async def test_api_tokens_are_shown_once_scoped_and_revocable(
        make_client: Callable[..., Any]) -> None:
    async with make_client(role="operator") as (bs, client):
        made = await client.post(f"{API}/auth/tokens",
                                 json={"name": "ci", "roles": ["viewer"]})
        assert made.status_code == 201, made.text
        secret, token_id = made.json()["token"], made.json()["api_token"]["id"]
        listed = (await client.get(f"{API}/auth/tokens")).json()
        assert token_id in {t["id"] for t in listed}
        assert secret not in json.dumps(listed)
        as_viewer = bearer(secret)
        assert (await client.get(f"{API}/workflows", headers=as_viewer)).status_code == 200
        problem(await client.post(f"{API}/workflows", json={"workflow": "hello"},
                                  headers=as_viewer), 403)
        assert (await client.delete(f"{API}/auth/tokens/{token_id}")).status_code == 204
        problem(await client.get(f"{API}/workflows", headers=as_viewer), 401)


async def test_a_token_never_holds_more_than_its_maker(make_client: Callable[..., Any]) -> None:
    async with make_client(role="operator") as (bs, client):
        refused = await client.post(f"{API}/auth/tokens",
                                    json={"name": "escalate", "roles": ["admin"]})
        problem(refused, 403)


# ------------------------------------------------------------------ the reported attacks


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", f"{API}/workflows", {"workflow": "hello", "inputs": {"name": "x'; id; echo '"}}),
    ("POST", f"{API}/templates", {"name": "payment.validate", "version": "1.9.0",
                                  "source": "job x uses shell { with { command: \"id\" } }"}),
    ("DELETE", f"{API}/templates/notify/1.0.0", None),
    ("GET", f"{API}/definitions/hello", None),
    ("POST", "/graphql", {"query": "{ __schema { types { name } } }"}),
    ("GET", "/ui/workflows/hello", None),
    ("POST", "/ui/workflows/hello/runs", None),
])
async def test_anonymous_attacks_are_refused_and_change_nothing(
        make_client: Callable[..., Any], method: str, path: str, body: Any) -> None:
    async with anonymous(make_client) as (bs, client):
        before = await bs.store.list_runs()
        response = await client.request(method, path, json=body)
        problem(response, 401)
        assert await bs.store.list_runs() == before


async def test_the_approver_is_the_actor_not_the_request_body(
        make_client: Callable[..., Any]) -> None:
    async with make_client(role="operator") as (bs, client):
        run_id = await start(client, "release_signoff")
        await job_in(client, run_id, "approve", "RUNNING")
        path = f"{API}/workflows/{run_id}/jobs/approve/complete"
        for _ in range(50):
            answer = await client.post(path, json={"output": {"approver": "attacker"}})
            if answer.status_code != 409:
                break
        assert answer.status_code == 202, answer.text
        done = await finished(client, run_id)
        assert done["outputs"] == {"approver": "operator-tester"}


async def test_a_viewer_cannot_approve(make_client: Callable[..., Any]) -> None:
    async with make_client(role="viewer") as (bs, client):
        problem(await client.post(f"{API}/workflows/x/jobs/approve/complete", json={}), 403)


# ------------------------------------------------------------------ found in review


async def test_an_api_token_cannot_mint_a_lasting_successor(
        make_client: Callable[..., Any]) -> None:
    async with make_client(role="operator") as (bs, client):
        made = await client.post(f"{API}/auth/tokens", json={
            "name": "short", "roles": ["viewer"], "expires_in": 60})
        assert made.status_code == 201, made.text
        minted = await client.post(f"{API}/auth/tokens", json={
            "name": "forever", "roles": ["viewer"]}, headers=bearer(made.json()["token"]))
        assert problem(minted, 403)["detail"] == "an API token cannot make API tokens"


async def test_an_administrator_of_users_grants_no_more_than_they_hold(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, admin):
        await admin.put(f"{API}/roles/helpdesk", json={"permissions": ["users:admin"]})
        await admin.put(f"{API}/roles/roler", json={"permissions": ["roles:admin"]})
        await add_user(bs, "hd", role="helpdesk")
        await add_user(bs, "rr", role="roler")
        hd = bearer((await login(admin, "hd")).json()["access_token"])
        rr = bearer((await login(admin, "rr")).json()["access_token"])
        problem(await admin.put(f"{API}/users/hd/roles", json={"roles": ["admin"]},
                                headers=hd), 403)
        problem(await admin.post(f"{API}/users", json={"name": "sock", "roles": ["operator"]},
                                 headers=hd), 403)
        widened = await admin.put(f"{API}/roles/roler",
                                  json={"permissions": ["roles:admin", "*"]}, headers=rr)
        problem(widened, 403)
        kept = await admin.put(f"{API}/users/hd/roles", json={"roles": ["helpdesk"]},
                               headers=hd)
        assert kept.status_code == 200, kept.text


async def test_a_sign_in_racing_a_disable_loses(make_client: Callable[..., Any],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The user is disabled while the sign-in checks the password: no token, and the
    sign-in does not write the account back as it read it."""
    async with anonymous(make_client) as (bs, client):
        await add_user(bs, "ann")
        logins = bs.stash[AUTH].logins
        checked = logins._second_factor

        async def disabled_meanwhile(user: Any, code: str | None) -> bool:
            await bs.stash[AUTH].accounts.set_disabled("ann", True)
            return bool(await checked(user, code))

        monkeypatch.setattr(logins, "_second_factor", disabled_meanwhile)
        problem(await login(client, "ann"), 401)
        assert (await bs.store.get_user("ann")).disabled  # type: ignore[attr-defined]


async def test_auth_none_serves_only_requests_on_loopback(tmp_path: Any) -> None:
    from baseshift.core.access import ActorKind
    from baseshift.core.app.application import BaseShift
    from baseshift.core.settings import Settings

    class Request:
        def __init__(self, server: tuple[str, int | None] | None) -> None:
            self.scope = {"server": server}
            self.headers: dict[str, str] = {}

    bs = BaseShift(Settings(store="memory", auth="none", load_entrypoints=False,
                            data_dir=tmp_path))
    for server in (("127.0.0.1", 8080), ("::1", 8080), ("localhost", 80), None):
        actor = await bs.hooks.authenticate(Request(server))
        assert actor is not None and actor.kind is ActorKind.LOCAL
    assert await bs.hooks.authenticate(Request(("192.0.2.7", 8080))) is None


async def test_a_grant_limited_to_some_workflows_reaches_only_them(
        make_client: Callable[..., Any]) -> None:
    async with make_client() as (bs, admin):
        await bs.stash[AUTH].accounts.add_user("pat", PASSWORD,
                                               [Grant("operator", "release_*")])
        pat = bearer((await login(admin, "pat")).json()["access_token"])
        mine = await admin.post(f"{API}/workflows", json={"workflow": "release_signoff"},
                                headers=pat)
        assert mine.status_code == 201, mine.text
        problem(await admin.post(f"{API}/workflows", json={"workflow": "hello"}, headers=pat),
                403)
        other = await start(admin, "hello")
        run_id = mine.json()["workflow_id"]
        assert (await admin.get(f"{API}/workflows/{run_id}", headers=pat)).status_code == 200
        problem(await admin.get(f"{API}/workflows/{other}", headers=pat), 403)
        listed = await admin.get(f"{API}/workflows", params={"workflow": "release_signoff"},
                                 headers=pat)
        assert [r["id"] for r in listed.json()["runs"]] == [run_id]
        problem(await admin.get(f"{API}/workflows", params={"workflow": "hello"},
                                headers=pat), 403)
        everything = await admin.get(f"{API}/workflows", headers=pat)  # only what it reaches
        assert [r["id"] for r in everything.json()["runs"]] == [run_id]
        assert {r["id"] for r in (await admin.get(f"{API}/workflows")).json()[
            "runs"]} == {run_id, other}
        names = {d["name"] for d in (await admin.get(f"{API}/definitions",
                                                     headers=pat)).json()}
        assert names and all(n.startswith("release_") for n in names)
        for page in ("/", "/ui/runs", "/ui/workflows"):  # the UI's lists likewise
            html = (await admin.get(page, headers={**pat, "Accept": "text/html"})).text
            assert other not in html and "hello.bsw" not in html, page
        assert run_id in (await admin.get("/ui/runs", headers=pat)).text
        problem(await admin.get(f"{API}/templates", headers=pat), 403)  # not per workflow
        await bs.stash[AUTH].accounts.add_user("nat", PASSWORD, [Grant("viewer", "nothing*")])
        nat = bearer((await login(admin, "nat")).json()["access_token"])
        problem(await admin.get(f"{API}/workflows", headers=nat), 403)  # reaches none


async def test_an_oversized_form_of_a_session_is_413_not_500(
        make_client: Callable[..., Any]) -> None:
    """The CSRF check reads a form body for its token: one over the size limit is refused
    as too large, and never replayed cut short to the view."""
    async with anonymous(make_client) as (bs, client):
        await add_user(bs, "ann")
        signed = await client.post("/ui/login", data={"username": "ann",
                                                      "password": PASSWORD})
        assert signed.status_code == 303, signed.text
        big = "x" * (8 * 1024 * 1024 + 10)
        answer = await client.post("/ui/workflows/hello/runs", content=f"csrf_token={big}",
                                   headers={"content-type":
                                            "application/x-www-form-urlencoded"})
        assert answer.status_code == 413
        assert await bs.store.list_runs() == []


async def test_the_first_admin_made_by_another_server_meanwhile_is_no_error(
        make_client: Callable[..., Any], capsys: pytest.CaptureFixture[str]) -> None:
    from baseshift.plugins.auth.plugin import _first_admin

    async with anonymous(make_client) as (bs, client):
        accounts = bs.stash[AUTH].accounts
        await _first_admin(accounts)
        printed = capsys.readouterr().err
        await _first_admin(accounts)  # a second server that also saw no user
        assert "created the user 'admin'" in printed
        assert capsys.readouterr().err == ""
