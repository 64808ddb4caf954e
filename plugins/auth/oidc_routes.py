"""Signing in with an OpenID provider: `/ui/login/oidc` sends the browser to the provider,
`/ui/login/oidc/callback` takes its answer, makes or updates the account and opens the same
session a password sign-in opens.

What the callback must match (state, nonce, PKCE verifier, where to go next) travels in a
short-lived HttpOnly cookie signed with the server's access-token keys, so any server of a
fleet can finish a sign-in another one started, and nothing is stored before it succeeds."""
from __future__ import annotations

from dataclasses import dataclass, replace
from http.cookies import SimpleCookie
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from baseshift.core import audit
from baseshift.core.errors import BaseShiftError, Forbidden, InputError, Unauthorized
from baseshift.core.identity import UserRecord
from baseshift.web.access import public
from baseshift.web.render import render
from baseshift.web.requests import baseshift_of

from .accounts import Accounts, check_name
from .http import auth_of
from .oidc_client import OIDC, AuthorizationRequest, RelyingParty
from .oidc_config import OidcSettings
from .pages import safe_next
from .sessions import session_cookies
from .state import SIGN_IN_LINKS

LOGIN_PATH = "/ui/login/oidc"
CALLBACK_PATH = "/ui/login/oidc/callback"
STATE_COOKIE = "bs_oidc"
PURPOSE = "oidc-login"
"""The `purpose` of the signed state cookie: never taken for an access token."""
STATE_SECONDS = 600


@dataclass(frozen=True, slots=True)
class Pending:
    """A sign-in started in this browser: the request the provider's answer must match."""

    request: AuthorizationRequest
    next: str


def _party(request: Request) -> RelyingParty:
    party = baseshift_of(request).stash.get(OIDC)
    if party is None:
        raise Unauthorized("sign-in with an identity provider is not configured here")
    return party


def _redirect_uri(request: Request, settings: OidcSettings) -> str:
    if settings.redirect_base:
        return settings.redirect_base + CALLBACK_PATH
    return str(request.url_for("oidc:callback"))


def _state_cookie(value: str, max_age: int, secure: bool) -> str:
    jar: SimpleCookie = SimpleCookie()
    jar[STATE_COOKIE] = value
    morsel = jar[STATE_COOKIE]
    morsel["path"] = CALLBACK_PATH
    morsel["httponly"] = True
    morsel["samesite"] = "Lax"  # sent on the provider's top-level redirect back here
    morsel["max-age"] = max_age
    if secure:
        morsel["secure"] = True
    return morsel.OutputString()


def _refused(request: Request, exc: BaseShiftError, target: str = "/") -> Response:
    links = baseshift_of(request).stash.get(SIGN_IN_LINKS, [])
    response = render(request, "auth/login.html",
                      {"section": "", "sign_in_links": links, "next": target, "username": "",
                       "error": exc.message if exc.hint is None
                       else f"{exc.message} ({exc.hint})"}, status=exc.status)
    response.headers["Cache-Control"] = "no-store"
    response.headers.append("set-cookie", _state_cookie("", 0, request.url.scheme == "https"))
    return response


@public("starts a sign-in at the identity provider; nothing changes here")
async def start(request: Request) -> Response:
    target = safe_next(request.query_params.get("next"))
    try:
        party = _party(request)
        pending = await party.authorization_request(_redirect_uri(request, party.settings))
        ticket = await auth_of(request).logins.tokens.issue(PURPOSE, {
            "purpose": PURPOSE, "state": pending.state, "nonce": pending.nonce,
            "verifier": pending.verifier, "next": target})
    except BaseShiftError as exc:
        return _refused(request, exc, target)
    response = RedirectResponse(pending.url, status_code=303)
    response.headers["Cache-Control"] = "no-store"
    response.headers.append("set-cookie", _state_cookie(
        ticket.token, STATE_SECONDS, request.url.scheme == "https"))
    return response


@public("the provider's answer, matched with this browser's signed state cookie, is the "
        "credential")
async def callback(request: Request) -> Response:
    target = "/"
    try:
        party = _party(request)
        pending = await _pending(request)
        target = pending.next
        claims = await party.finish(dict(request.query_params), pending.request,
                                    _redirect_uri(request, party.settings))
        state = auth_of(request)
        with audit.acting_as(replace(audit.acting(), actor=party.settings.source)):
            user = await provision(state.accounts, party.settings, claims)  # audited as the IdP
        pair = await state.logins.session_for(user, "oidc")
    except BaseShiftError as exc:
        await audit.record(baseshift_of(request).store, [audit.entry(
            "auth.login", "user:?", audit.FAILURE, method="oidc", reason=exc.message[:200])])
        return _refused(request, exc, target)
    secure = request.url.scheme == "https"
    response = RedirectResponse(target, status_code=303)
    for cookie in [*session_cookies(pair, state.logins.refresh_lifetime, secure),
                   _state_cookie("", 0, secure)]:
        response.headers.append("set-cookie", cookie)
    return response


async def _pending(request: Request) -> Pending:
    """The sign-in this browser started (from its state cookie), or Unauthorized."""
    token = request.cookies.get(STATE_COOKIE)
    if not token:
        raise Unauthorized("this sign-in was not started in this browser, or took too long",
                           hint="start the sign-in again from the sign-in page")
    try:
        claims = await auth_of(request).logins.tokens.verify(token)
    except Unauthorized:
        raise Unauthorized("this sign-in has expired or its cookie is not valid",
                           hint="start the sign-in again from the sign-in page") from None
    fields = [claims.get(k) for k in ("state", "nonce", "verifier", "next")]
    if claims.get("purpose") != PURPOSE or not all(isinstance(f, str) for f in fields):
        raise Unauthorized("this sign-in cookie is not valid",
                           hint="start the sign-in again from the sign-in page")
    state, nonce, verifier, target = (str(f) for f in fields)
    return Pending(AuthorizationRequest("", state, nonce, verifier), safe_next(target))


async def provision(accounts: Accounts, settings: OidcSettings,
                    claims: dict[str, Any]) -> UserRecord:
    """The account of the provider's user with these claims: made at the first sign-in,
    its roles set from the claims at every sign-in. Refused (nothing stored) when the claims
    give no role, the name belongs to an account from elsewhere, or the account is
    disabled."""
    name = username(settings, claims)
    grants = settings.grants_for(claims)
    if not grants:
        raise Forbidden(f"'{name}' holds no role on this server",
                        hint=f"an administrator maps values of the provider's "
                             f"'{settings.roles_claim}' claim to roles in [plugins.oidc.roles]")
    user = await accounts.store.get_user(name)
    if user is None:
        user, _ = await accounts.add_user(name, None, grants, source=settings.source)
        return user
    if user.source != settings.source:
        raise Forbidden(f"the user '{name}' of this server does not sign in with "
                        f"{settings.name}", hint="sign in with a password, or ask an "
                                                 "administrator to rename one of the two")
    if user.disabled:
        raise Forbidden(f"the user '{name}' is disabled on this server")
    if set(await accounts.store.grants_of(user.id)) != set(grants):
        await accounts.set_grants(name, grants)
    return user


def username(settings: OidcSettings, claims: dict[str, Any]) -> str:
    """The user name here: the configured claim (else `sub`), in lower case."""
    value = claims.get(settings.username_claim) or claims.get("sub")
    try:
        return check_name(str(value or "").lower())
    except InputError:
        raise Forbidden(f"the provider's user name {value!r} is not a valid user name here",
                        hint="use 1 to 64 letters, digits and . _ - @, or choose another "
                             "claim with plugins.oidc.username_claim") from None


def routes() -> list[BaseRoute]:
    return [Route(LOGIN_PATH, start, methods=["GET"], name="oidc:start"),
            Route(CALLBACK_PATH, callback, methods=["GET"], name="oidc:callback")]
