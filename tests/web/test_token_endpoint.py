"""The OAuth 2.0 client-credentials grant as a machine client meets it: an API token's id
and secret traded at `POST /api/v1/auth/token` for an access token that acts with the API
token's roles and no more, and the RFC 6749 5.2 errors for everything else (never 500)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from baseshift.core.access import Grant
from baseshift.core.appface import App
from baseshift.plugins.auth.state import AUTH
from tests.auth_support import bearer, token_for
from tests.web.api_support import API

TOKEN = f"{API}/auth/token"
GRANT = {"grant_type": "client_credentials"}


async def client_of(bs: App, role: str = "viewer", *, user_role: str = "operator",
                    expires_in: float | None = None) -> tuple[str, str]:
    """(client_id, client_secret): an API token holding `role`, of a user holding
    `user_role`."""
    await token_for(bs, user_role)
    record, secret = await bs.stash[AUTH].logins.create_api_token(
        f"{user_role}-tester", "ci", [Grant(role)], expires_in)
    return record.id, secret


def oauth_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    assert body["error"] == error
    return body


async def test_a_client_trades_its_credentials_for_a_token_with_its_roles_and_no_more(
        make_client: Callable[..., Any]) -> None:
    async with make_client(role=None) as (bs, client):
        client_id, secret = await client_of(bs, "viewer", user_role="operator")
        answer = await client.post(TOKEN, data=GRANT, auth=(client_id, secret))
        assert answer.status_code == 200, answer.text
        assert answer.headers["cache-control"] == "no-store"
        body = answer.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 900
        assert set(body) == {"access_token", "token_type", "expires_in"}
        headers = bearer(body["access_token"])
        me = (await client.get(f"{API}/auth/user", headers=headers)).json()
        assert me["kind"] == "client" and me["id"] == client_id
        assert me["user"] == "operator-tester" and me["roles"] == [{"role": "viewer",
                                                                    "scope": "*"}]
        assert "runs:start" not in me["permissions"]
        assert (await client.get(f"{API}/workflows", headers=headers)).status_code == 200
        started = await client.post(f"{API}/workflows", json={"workflow": "hello"},
                                    headers=headers)
        assert started.status_code == 403  # its user may start runs; the client may not
        minted = await client.post(f"{API}/auth/tokens", headers=headers,
                                   json={"name": "more", "roles": ["viewer"]})
        assert minted.status_code == 403  # no lasting successor of itself


async def test_credentials_in_the_form_work_too(make_client: Callable[..., Any]) -> None:
    async with make_client(role=None) as (bs, client):
        client_id, secret = await client_of(bs)
        answer = await client.post(TOKEN, data={**GRANT, "client_id": client_id,
                                                "client_secret": secret})
        assert answer.status_code == 200, answer.text


async def test_a_client_never_holds_more_than_its_user_now(
        make_client: Callable[..., Any]) -> None:
    async with make_client(role=None) as (bs, client):
        client_id, secret = await client_of(bs, "operator", user_role="operator")
        body = (await client.post(TOKEN, data=GRANT, auth=(client_id, secret))).json()
        await bs.stash[AUTH].accounts.set_grants("operator-tester", [Grant("viewer")])
        started = await client.post(f"{API}/workflows", json={"workflow": "hello"},
                                    headers=bearer(body["access_token"]))
        assert started.status_code == 403


@pytest.mark.parametrize("credentials", ["wrong secret", "unknown id", "another token",
                                         "no secret", "not a token"])
async def test_wrong_credentials_are_invalid_client(make_client: Callable[..., Any],
                                                    credentials: str) -> None:
    async with make_client(role=None) as (bs, client):
        client_id, secret = await client_of(bs)
        other_id, other_secret = await client_of(bs, "viewer", user_role="author")
        auth = {"wrong secret": (client_id, secret[:-2] + "xy"),
                "unknown id": ("0" * 32, secret),
                "another token": (client_id, other_secret),
                "no secret": (client_id, ""),
                "not a token": (client_id, "hunter2")}[credentials]
        answer = await client.post(TOKEN, data=GRANT, auth=auth)
        oauth_error(answer, 401, "invalid_client")
        assert answer.headers["www-authenticate"].startswith("Basic ")


async def test_a_revoked_or_expired_token_or_disabled_user_is_no_client(
        make_client: Callable[..., Any]) -> None:
    async with make_client(role=None) as (bs, client):
        state = bs.stash[AUTH]
        revoked = await client_of(bs)
        await state.logins.revoke_api_token(revoked[0])
        expired = await client_of(bs, expires_in=1e-6)
        disabled = await client_of(bs, user_role="author")
        await state.accounts.set_disabled("author-tester", True)
        for credentials in (revoked, expired, disabled):
            oauth_error(await client.post(TOKEN, data=GRANT, auth=credentials), 401,
                        "invalid_client")
        posted = await client.post(TOKEN, data={**GRANT, "client_id": revoked[0],
                                                "client_secret": revoked[1]})
        oauth_error(posted, 401, "invalid_client")


async def test_revoking_the_api_token_ends_the_access_tokens_it_got(
        make_client: Callable[..., Any]) -> None:
    async with make_client(role=None) as (bs, client):
        client_id, secret = await client_of(bs)
        body = (await client.post(TOKEN, data=GRANT, auth=(client_id, secret))).json()
        headers = bearer(body["access_token"])
        assert (await client.get(f"{API}/auth/user", headers=headers)).status_code == 200
        await bs.stash[AUTH].logins.revoke_api_token(client_id)
        refused = await client.get(f"{API}/auth/user", headers=headers)
        assert refused.status_code == 401
        assert "revoked" in refused.json()["detail"]


@pytest.mark.parametrize(("request_kw", "status", "error"), [
    ({"data": {"grant_type": "password", "username": "a", "password": "b"}}, 400,
     "unsupported_grant_type"),
    ({"data": {"grant_type": "authorization_code", "code": "x"}}, 400,
     "unsupported_grant_type"),
    ({"data": {}}, 400, "invalid_request"),
    ({"json": GRANT}, 400, "invalid_request"),
    ({"content": b"grant_type=client_credentials&grant_type=client_credentials",
      "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 400,
     "invalid_request"),
    ({"content": b"grant_type=\xff", "headers": {
        "Content-Type": "application/x-www-form-urlencoded"}}, 400, "invalid_request"),
    ({"data": {**GRANT, "scope": "admin"}}, 400, "invalid_scope"),
])
async def test_malformed_requests_get_rfc6749_errors(
        make_client: Callable[..., Any], request_kw: dict[str, Any], status: int,
        error: str) -> None:
    async with make_client(role=None) as (bs, client):
        credentials = await client_of(bs)
        answer = await client.post(TOKEN, auth=credentials, **request_kw)
        oauth_error(answer, status, error)


async def test_two_ways_of_authenticating_at_once_are_refused(
        make_client: Callable[..., Any]) -> None:
    async with make_client(role=None) as (bs, client):
        client_id, secret = await client_of(bs)
        answer = await client.post(TOKEN, auth=(client_id, secret),
                                   data={**GRANT, "client_id": client_id,
                                         "client_secret": secret})
        oauth_error(answer, 400, "invalid_request")


async def test_basic_credentials_elsewhere_are_still_refused(
        make_client: Callable[..., Any]) -> None:
    async with make_client(role=None) as (bs, client):
        credentials = await client_of(bs)
        answer = await client.get(f"{API}/auth/user", auth=credentials)
        assert answer.status_code == 401
