"""Signing in with an OpenID provider, against a real one: npm's `oidc-provider` run by node
on loopback (tests/web/oidc_provider.mjs; tests/run installs the package, pinned). The
browser is an httpx client following the redirects between the app and the provider; the
app talks to the provider over HTTP as it would in production (discovery, code exchange,
JWKS, UserInfo). Attacks on the exchange are made for real: a changed state, a code for
another nonce, a code used twice, an ID token of another client or another provider."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from baseshift.core.access import Grant
from baseshift.core.errors import ConfigError
from baseshift.plugins.auth.oidc_client import LoginRefused, RelyingParty
from baseshift.plugins.auth.oidc_config import oidc_settings
from baseshift.plugins.auth.state import AUTH
from tests.web.api_support import API

SCRIPT = Path(__file__).with_name("oidc_provider.mjs")
CALLBACK = "http://localhost/ui/login/oidc/callback"
SECRET = "a client secret for tests only"
CLIENTS = [{"client_id": client_id, "client_secret": SECRET, "redirect_uris": [CALLBACK],
            "grant_types": ["authorization_code"], "response_types": ["code"]}
           for client_id in ("baseshift", "other-app")]
ACCOUNTS = {
    "alice": {"password": "alice-pw", "claims": {"preferred_username": "alice",
                                                 "groups": ["ops", "staff"]}},
    "bob": {"password": "bob-pw", "claims": {"preferred_username": "bob",
                                             "groups": ["marketing"]}},
    "eve": {"password": "eve-pw", "claims": {"preferred_username": "Eve Smith!",
                                             "groups": ["ops"]}},
}


def _package() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    prefix = Path(os.environ.get("BASESHIFT_NPM") or cache / "baseshift" / "npm")
    return prefix / "node_modules" / "oidc-provider"


@dataclass
class Provider:
    issuer: str
    process: subprocess.Popen[str] | None = None


def _start(node: str, package: Path) -> Provider:
    config = json.dumps({"clients": CLIENTS, "accounts": ACCOUNTS})
    process = subprocess.Popen([node, str(SCRIPT), str(package), config], text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, f"the provider exited with {process.wait()}"
    return Provider(json.loads(line)["issuer"], process)


def _stop(provider: Provider) -> None:
    assert provider.process is not None
    assert provider.process.stdin is not None and provider.process.stdout is not None
    provider.process.stdin.close()  # the script exits when its stdin ends
    provider.process.wait()
    provider.process.stdout.close()


@pytest.fixture(scope="module")
def providers() -> Iterator[tuple[Provider, Provider]]:
    """Two providers: the one the app trusts, and another on another port (another
    issuer) that signs with the same development keys, as a shared key would."""
    node, package = shutil.which("node"), _package()
    if node is None:  # tests/run refuses to run without node and npm: never a skip
        pytest.fail("node is not on PATH: the OpenID provider of these tests runs on node; "
                    "install Node.js 20 or later with npm, then tests/run")
    if not (package / "package.json").is_file():
        pytest.fail(f"{package} is missing: run tests/run, which installs npm's oidc-provider "
                    "there (or set BASESHIFT_NPM to a folder holding node_modules/oidc-provider)")
    started = (_start(node, package), _start(node, package))
    yield started
    for provider in started:
        _stop(provider)


@pytest.fixture
def provider(providers: tuple[Provider, Provider]) -> Provider:
    return providers[0]


def oidc_options(provider: Provider, **more: Any) -> dict[str, Any]:
    return {"oidc": {"issuer": provider.issuer, "client_id": "baseshift",
                     "client_secret": SECRET, "name": "Test IdP",
                     "scopes": ["openid", "profile", "groups"],
                     "roles": {"ops": ["operator", {"role": "viewer", "scope": "pay*"}],
                               "admins": "admin"}, **more}}


def _absolute(base: str, location: str) -> str:
    return location if location.startswith("http") else base + location


async def at_provider(url: str, login: str, password: str) -> str:
    """Sign in at the provider as a browser would: follow its redirects, submit its form;
    returns where it sends the browser back (the app's callback with code and state)."""
    base = "{0.scheme}://{0.netloc}".format(urlsplit(url))
    async with httpx.AsyncClient() as browser:
        page = await browser.get(url, follow_redirects=True)
        assert page.status_code == 200 and "<form" in page.text, page.text
        sent = await browser.post(str(page.url), data={"login": login, "password": password})
        assert sent.status_code == 303, sent.text
        back = await browser.get(_absolute(base, sent.headers["location"]))
        assert back.status_code == 303, back.text
        location: str = back.headers["location"]
        assert location.startswith(CALLBACK), location
        return location


async def begin(client: httpx.AsyncClient, next_page: str = "/") -> str:
    """Start signing in at the app: the provider's authorization URL."""
    started = await client.get("/ui/login/oidc", params={"next": next_page})
    assert started.status_code == 303, started.text
    assert "bs_oidc" in started.cookies
    location: str = started.headers["location"]
    return location


async def sign_in(client: httpx.AsyncClient, login: str, password: str,
                  next_page: str = "/") -> httpx.Response:
    back = await at_provider(await begin(client, next_page), login, password)
    return await client.get(back)


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return urlunsplit(parts._replace(query=urlencode({**query, **changes})))


def refused(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert words in response.text
    assert "bs_session" not in response.cookies
    assert response.headers["content-type"].startswith("text/html")


async def test_signing_in_at_the_provider_opens_a_session_with_the_mapped_roles(
        make_client: Callable[..., Any], provider: Provider) -> None:
    async with make_client(role=None, extra=oidc_options(provider)) as (bs, client):
        page = await client.get("/ui/login")
        assert "Sign in with Test IdP" in page.text and "/ui/login/oidc" in page.text
        back = await sign_in(client, "alice", "alice-pw", next_page="/ui/runs")
        assert back.status_code == 303, back.text
        assert back.headers["location"] == "/ui/runs"
        assert {"bs_session", "bs_refresh"} <= set(client.cookies.keys())
        me = (await client.get(f"{API}/auth/user")).json()
        assert me["name"] == "alice" and me["kind"] == "user"
        assert me["roles"] == [{"role": "operator", "scope": "*"},
                               {"role": "viewer", "scope": "pay*"}]
        user = await bs.stash[AUTH].accounts.user("alice")
        assert user.source == f"oidc:{provider.issuer}" and user.password_hash is None
        assert (await client.get("/ui/runs")).status_code == 200


async def test_roles_follow_the_claims_at_every_sign_in(
        make_client: Callable[..., Any], provider: Provider) -> None:
    async with make_client(role=None, extra=oidc_options(provider)) as (bs, client):
        assert (await sign_in(client, "alice", "alice-pw")).status_code == 303
        accounts = bs.stash[AUTH].accounts
        await accounts.set_grants("alice", [Grant("admin")])
        assert (await sign_in(client, "alice", "alice-pw")).status_code == 303
        grants = await accounts.store.grants_of((await accounts.user("alice")).id)
        assert set(grants) == {Grant("operator"), Grant("viewer", "pay*")}


async def test_a_user_no_claim_maps_is_refused_and_nothing_is_stored(
        make_client: Callable[..., Any], provider: Provider) -> None:
    async with make_client(role=None, extra=oidc_options(provider)) as (bs, client):
        refused(await sign_in(client, "bob", "bob-pw"), 403, "holds no role")
        assert await bs.stash[AUTH].accounts.store.get_user("bob") is None


async def test_the_default_role_admits_a_user_no_claim_maps(
        make_client: Callable[..., Any], provider: Provider) -> None:
    options = oidc_options(provider, default_role="viewer")
    async with make_client(role=None, extra=options) as (bs, client):
        assert (await sign_in(client, "bob", "bob-pw")).status_code == 303
        me = (await client.get(f"{API}/auth/user")).json()
        assert me["roles"] == [{"role": "viewer", "scope": "*"}]


async def test_a_disabled_user_is_refused(make_client: Callable[..., Any],
                                          provider: Provider) -> None:
    async with make_client(role=None, extra=oidc_options(provider)) as (bs, client):
        assert (await sign_in(client, "alice", "alice-pw")).status_code == 303
        await bs.stash[AUTH].accounts.set_disabled("alice", True)
        client.cookies.clear()
        refused(await sign_in(client, "alice", "alice-pw"), 403, "disabled")


async def test_a_local_account_of_the_same_name_is_not_taken_over(
        make_client: Callable[..., Any], provider: Provider) -> None:
    async with make_client(role=None, extra=oidc_options(provider)) as (bs, client):
        await bs.stash[AUTH].accounts.add_user("alice", "a local passphrase here",
                                               [Grant("admin")])
        refused(await sign_in(client, "alice", "alice-pw"), 403, "does not sign in with")


async def test_a_name_not_valid_here_is_refused(make_client: Callable[..., Any],
                                                provider: Provider) -> None:
    async with make_client(role=None, extra=oidc_options(provider)) as (bs, client):
        refused(await sign_in(client, "eve", "eve-pw"), 403, "not a valid user name")
        assert await bs.stash[AUTH].accounts.store.list_users() == []


async def test_a_changed_state_is_refused(make_client: Callable[..., Any],
                                          provider: Provider) -> None:
    async with make_client(role=None, extra=oidc_options(provider)) as (bs, client):
        back = await at_provider(await begin(client), "alice", "alice-pw")
        refused(await client.get(with_query(back, state="forged")), 400,
                "did not make")
        assert await bs.stash[AUTH].accounts.store.list_users() == []


async def test_an_answer_without_the_browser_cookie_is_refused(
        make_client: Callable[..., Any], provider: Provider) -> None:
    """Login CSRF: an attacker's own code and state, sent to a victim's browser."""
    async with make_client(role=None, extra=oidc_options(provider)) as (bs, client):
        back = await at_provider(await begin(client), "alice", "alice-pw")
        client.cookies.clear()
        refused(await client.get(back), 401, "not started in this browser")


async def test_a_code_used_twice_is_refused(make_client: Callable[..., Any],
                                            provider: Provider) -> None:
    async with make_client(role=None, extra=oidc_options(provider)) as (bs, client):
        back = await at_provider(await begin(client), "alice", "alice-pw")
        state_cookie = client.cookies["bs_oidc"]
        assert (await client.get(back)).status_code == 303
        client.cookies.clear()
        client.cookies.set("bs_oidc", state_cookie, path="/ui/login/oidc/callback")
        refused(await client.get(back), 401, "invalid_grant")


async def test_a_code_issued_for_another_nonce_is_refused(
        make_client: Callable[..., Any], provider: Provider) -> None:
    """Code injection: the state and PKCE challenge of this browser's request, but a code
    the provider issued for another nonce (another authorization request)."""
    async with make_client(role=None, extra=oidc_options(provider)) as (bs, client):
        url = with_query(await begin(client), nonce="the attacker's nonce")
        back = await at_provider(url, "alice", "alice-pw")
        refused(await client.get(back), 401, "nonce")
        assert await bs.stash[AUTH].accounts.store.list_users() == []


async def test_the_provider_saying_no_is_a_page_not_an_error(
        make_client: Callable[..., Any], provider: Provider) -> None:
    async with make_client(role=None, extra=oidc_options(provider)) as (bs, client):
        state = parse_qs(urlsplit(await begin(client)).query)["state"][0]
        answer = await client.get("/ui/login/oidc/callback",
                                  params={"error": "access_denied", "state": state})
        refused(answer, 401, "access_denied")
        state = parse_qs(urlsplit(await begin(client)).query)["state"][0]
        answer = await client.get("/ui/login/oidc/callback", params={"state": state})
        refused(answer, 400, "no code")


async def test_an_unreachable_provider_is_a_clear_page(
        make_client: Callable[..., Any]) -> None:
    gone = Provider("http://127.0.0.1:9")  # the discard port: nobody answers
    async with make_client(role=None, extra=oidc_options(gone)) as (bs, client):
        answer = await client.get("/ui/login/oidc")
        assert answer.status_code == 502
        assert "cannot be reached" in answer.text


async def _id_token(provider: Provider, client_id: str, nonce: str) -> str:
    """An ID token the provider issues to `client_id` for a sign-in of alice."""
    settings = oidc_settings(_Options(oidc_options(provider, client_id=client_id)))
    assert settings is not None
    async with httpx.AsyncClient() as http:
        party = RelyingParty(settings, http)
        request = await party.authorization_request(CALLBACK)
        url = with_query(request.url, nonce=nonce)
        code = parse_qs(urlsplit(await at_provider(url, "alice", "alice-pw")).query)["code"][0]
        info = await party.info()
        answer = await http.post(info.token_endpoint, auth=(client_id, SECRET), data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
            "code_verifier": request.verifier})
        token: str = answer.json()["id_token"]
        return token


@dataclass
class _Options:
    extra: dict[str, Any]


async def test_an_id_token_of_another_client_or_provider_is_refused(
        providers: tuple[Provider, Provider]) -> None:
    ours, theirs = providers
    settings = oidc_settings(_Options(oidc_options(ours)))
    assert settings is not None
    async with httpx.AsyncClient() as http:
        party = RelyingParty(settings, http)
        good = await _id_token(ours, "baseshift", "n1")
        assert (await party.verify_id_token(good, "n1"))["sub"] == "alice"
        with pytest.raises(LoginRefused, match="nonce"):
            await party.verify_id_token(good, "n2")
        other_client = await _id_token(ours, "other-app", "n1")
        with pytest.raises(LoginRefused, match="aud"):
            await party.verify_id_token(other_client, "n1")
        other_issuer = await _id_token(theirs, "baseshift", "n1")
        with pytest.raises(LoginRefused, match="iss"):
            await party.verify_id_token(other_issuer, "n1")
        header, payload, signature = good.split(".")
        with pytest.raises(LoginRefused):
            await party.verify_id_token(f"{header}.{payload[:-4]}AAAA.{signature}", "n1")


async def test_a_server_mapping_to_a_role_that_does_not_exist_does_not_start(
        make_client: Callable[..., Any]) -> None:
    gone = Provider("http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="nope"):
        async with make_client(role=None, extra=oidc_options(gone, roles={"x": "nope"})):
            pass
