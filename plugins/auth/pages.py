"""The sign-in pages: password and TOTP, a forced new password (a temporary one, the first
admin's), TOTP enrolment with a QR code and recovery codes, and sign-out."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from baseshift.core.access import TOKENS_OWN
from baseshift.core.errors import BadRequest, BaseShiftError
from baseshift.core.identity import UserRecord
from baseshift.web.access import actor_of, public, requires
from baseshift.web.authn import SET_COOKIES_KEY
from baseshift.web.render import render
from baseshift.web.requests import baseshift_of, read_form

from .http import auth_of, client_of
from .logins import EnrolmentRequired, PasswordChangeRequired, TokenPair
from .sessions import cleared_cookies, session_cookies
from .state import SIGN_IN_LINKS
from .totp import provisioning_uri, qr_svg

TEMPLATES = Path(__file__).parent / "templates"
HOME = "/"



def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site only (never `//host` or a URL)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return HOME
    return value



def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _signed_in(request: Request, pair: TokenPair, target: str) -> Response:
    response = RedirectResponse(target, status_code=303)
    for cookie in session_cookies(pair, auth_of(request).logins.refresh_lifetime,
                                  _secure(request)):
        response.headers.append("set-cookie", cookie)
    return response


def _page(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    links = baseshift_of(request).stash.get(SIGN_IN_LINKS, [])
    response = render(request, template, {"section": "", "sign_in_links": links, **context},
                      status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


@public("the sign-in page")
async def login_page(request: Request) -> Response:
    target = safe_next(request.query_params.get("next"))
    if actor_of(request).authenticated:
        return RedirectResponse(target, status_code=303)
    return _page(request, "auth/login.html", next=target, error=None, username="")


@public("signing in is how a browser gets a session")
async def login(request: Request) -> Response:
    form = await read_form(request)
    target, username = safe_next(form.get("next")), form.get("username", "").strip()
    logins = auth_of(request).logins
    try:
        pair = await logins.login(username, form.get("password", ""),
                                  form.get("totp_token", "").strip() or None, client_of(request))
    except PasswordChangeRequired as exc:
        return _page(request, "auth/password.html", 403, next=target, username=username,
                     error=None, reason=exc.message)
    except EnrolmentRequired:
        return await _enrol_page(request, await auth_of(request).accounts.user(username),
                                 target)
    except BaseShiftError as exc:
        return _page(request, "auth/login.html", exc.status, next=target, username=username,
                     error=exc.message)
    return _signed_in(request, pair, target)


@public("changing a password proves itself with the old one (and the TOTP code)")
async def change_password(request: Request) -> Response:
    form = await read_form(request)
    target, username = safe_next(form.get("next")), form.get("username", "").strip()
    new = form.get("new_password", "")
    if new != form.get("repeat_password", ""):
        return _page(request, "auth/password.html", 422, next=target, username=username,
                     error="the two new passwords differ", reason=None)
    try:
        pair = await auth_of(request).logins.change_password(
            username, form.get("password", ""), new,
            form.get("totp_token", "").strip() or None, client_of(request))
    except EnrolmentRequired:
        return await _enrol_page(request, await auth_of(request).accounts.user(username),
                                 target)
    except BaseShiftError as exc:
        return _page(request, "auth/password.html", exc.status, next=target,
                     username=username, error=exc.message, reason=None)
    return _signed_in(request, pair, target)


async def _enrol_page(request: Request, user: UserRecord, target: str,
                      error: str | None = None, status: int = 200) -> Response:
    state = auth_of(request)
    secret = await state.accounts.begin_enrolment(user)
    uri = provisioning_uri(secret, user.name)
    return _page(request, "auth/enrol.html", 422 if error else status, next=target,
                 ticket=await state.logins.enrolment_ticket(user), secret=secret, uri=uri,
                 qr=qr_svg(uri), error=error)


@public("the enrolment ticket in the form is the credential")
async def enrol(request: Request) -> Response:
    form = await read_form(request)
    target, state = safe_next(form.get("next")), auth_of(request)
    try:
        user = await state.logins.enrolling_user(form.get("ticket", ""))
    except BaseShiftError as exc:
        return _page(request, "auth/login.html", exc.status, next=target, username="",
                     error=exc.message)
    codes = await state.accounts.confirm_enrolment(user, form.get("totp_token", "").strip())
    if codes is None:
        return await _enrol_page(request, user, target,
                                 error="that code is wrong: check the time of this device "
                                       "and enter the current code")
    pair = await state.logins.session_for(user)
    response = _page(request, "auth/recovery.html", codes=codes, next=target)
    for cookie in session_cookies(pair, state.logins.refresh_lifetime, _secure(request)):
        response.headers.append("set-cookie", cookie)
    return response


@requires(TOKENS_OWN)
async def logout(request: Request) -> Response:
    actor = actor_of(request)
    session = actor.claims.get("sid")
    if not isinstance(session, str):
        raise BadRequest("only a browser session signs out here",
                        hint="API clients: POST /api/v1/auth/logout with the refresh token")
    await auth_of(request).logins.logout(None, session)
    request.scope[SET_COOKIES_KEY] = cleared_cookies(_secure(request))
    return RedirectResponse("/ui/login", status_code=303)


def routes() -> list[BaseRoute]:
    return [
        Route("/ui/login", login_page, methods=["GET"], name="auth:login_page"),
        Route("/ui/login", login, methods=["POST"], name="auth:login_form"),
        Route("/ui/password", change_password, methods=["POST"], name="auth:password_form"),
        Route("/ui/enrol", enrol, methods=["POST"], name="auth:enrol_form"),
        Route("/ui/logout", logout, methods=["POST"], name="auth:logout_form"),
    ]
