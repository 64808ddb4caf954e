"""The builtin `auth` plugin: accounts and tokens in the state store, the `authenticate`
hook (bearer access tokens, API tokens), the builtin permissions, the first administrator.

Options (`[plugins.auth]` in baseshift.toml): `issuer` (the `iss` of access tokens),
`access_token_seconds` (900), `refresh_token_seconds` (30 days), `algorithm` (`EdDSA` or
`ES256`), `first_admin` (true: `serve` creates `admin` when there is no user)."""
from __future__ import annotations

import ipaddress
import secrets
import sys
from typing import TYPE_CHECKING, Any

from baseshift.core.access import BUILTIN_PERMISSIONS, Actor, ActorKind, Grant, Permission
from baseshift.core.appface import App
from baseshift.core.config import option
from baseshift.core.errors import ConfigError, Conflict, Unauthorized
from baseshift.core.hookspecs import hookimpl
from baseshift.core.identity import IdentityStore
from baseshift.core.stash import SERVING

from .state import AUTH

if TYPE_CHECKING:
    from .accounts import Accounts

LOCAL_ADMIN = Actor(id="local", name="local", kind=ActorKind.LOCAL, grants=(Grant("admin"),))
"""Everyone, when the server runs with `--auth none` (loopback only)."""

def _on_loopback(server: Any) -> bool:
    """Whether a request arrived on a loopback address (or a Unix socket, or in process)."""
    if not server or server[1] is None:
        return True
    host = str(server[0]).strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def auth_enabled(baseshift: App) -> bool:
    return baseshift.settings.auth != "none"


@hookimpl
def register_permissions() -> list[Permission]:
    return list(BUILTIN_PERMISSIONS)


@hookimpl
async def startup(baseshift: App) -> None:
    store = baseshift.store
    if not isinstance(store, IdentityStore):
        if auth_enabled(baseshift):
            raise ConfigError(f"the state store '{baseshift.settings.store}' keeps no "
                              "accounts, so nobody could sign in",
                              hint="use the sqlite, postgres or memory store, or run "
                                   "with --auth none on a loopback address")
        return
    # imported here: every command line loads this module, few commands need the crypto
    from .accounts import Accounts
    from .logins import REFRESH_LIFETIME, Logins
    from .passwords import Passwords
    from .sessions import Sessions
    from .signing import AccessTokens
    from .state import AuthState

    settings = baseshift.settings
    accounts = Accounts(store, Passwords())
    tokens = AccessTokens(store, issuer=option(settings, "auth", "issuer", "baseshift"),
                          audience="baseshift",
                          lifetime=option(settings, "auth", "access_token_seconds", 900),
                          algorithm=option(settings, "auth", "algorithm", "EdDSA"))
    logins = Logins(accounts, tokens, refresh_lifetime=option(
        settings, "auth", "refresh_token_seconds", REFRESH_LIFETIME))
    state = AuthState(accounts, logins, Sessions(logins), baseshift.hooks.permissions())
    baseshift.stash[AUTH] = state
    await accounts.ensure_builtin_roles()
    if (baseshift.stash.get(SERVING) and auth_enabled(baseshift)
            and option(settings, "auth", "first_admin", True)
            and await store.count_users() == 0):
        await _first_admin(accounts)


async def _first_admin(accounts: Accounts) -> None:
    """Create `admin` with a random password printed once on the console (never logged):
    it must be changed, and TOTP enrolled, at the first sign-in."""
    password = secrets.token_urlsafe(18)
    try:
        await accounts.add_user("admin", password, [Grant("admin")], temporary=True)
    except Conflict:  # another server of the fleet, starting at the same time, made it
        return
    print("\n  No user existed, so Base Shift created the user 'admin' with the password\n\n"
          f"      {password}\n\n  It is shown only this once. Sign in with it: you will "
          "choose a new password\n  and enrol an authenticator app (TOTP).\n",
          file=sys.stderr, flush=True)


@hookimpl
async def authenticate(baseshift: App, request: Any) -> Actor | None:
    if not auth_enabled(baseshift):
        # `--auth none` is for this machine only, however the app was started (`serve`
        # refuses it off loopback; `hypercorn server:app -b 0.0.0.0` must not open it)
        return LOCAL_ADMIN if _on_loopback(request.scope.get("server")) else None
    state = baseshift.stash.get(AUTH)
    if state is None:
        return None
    header = request.headers.get("authorization", "")
    if not header:
        from baseshift.web.authn import SET_COOKIES_KEY

        set_cookies = request.scope.setdefault(SET_COOKIES_KEY, [])
        return await state.sessions.actor(request.cookies, request.url.scheme == "https",
                                          set_cookies)
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    from .oauth_clients import TOKEN_PATH

    if scheme.lower() == "basic" and request.url.path == TOKEN_PATH:
        return None  # a client authenticating to the token endpoint, which checks it
    if scheme.lower() != "bearer" or not credential:
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    from .tokens import API_TOKEN_PREFIX

    if credential.startswith(API_TOKEN_PREFIX):
        return await state.logins.actor_for_api_token(credential)
    return await state.logins.actor_for_access_token(credential)


@hookimpl
def configure(baseshift: App) -> None:
    from pathlib import Path

    from baseshift.web.render import add_templates

    add_templates(baseshift, Path(__file__).parent / "templates")


@hookimpl
def register_routes() -> list[Any]:
    from . import admin_pages, admin_routes, client_credentials, pages, routes

    return [*routes.routes(), *client_credentials.routes(), *admin_routes.routes(),
            *pages.routes(), *admin_pages.routes()]
