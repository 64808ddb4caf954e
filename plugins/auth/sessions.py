"""The web UI's session: the login's access token and refresh token in two HttpOnly cookies
(SameSite=Lax, Secure under TLS), renewed transparently when the access token expires, and
a CSRF token every form and htmx request sends back (web/authn.py checks it).

The CSRF token is a digest of the session id: it is the same on every page of one login,
needs no storage, and cannot be derived by a page that cannot read the HttpOnly cookie."""
from __future__ import annotations

import asyncio
import hashlib
import time
from http.cookies import SimpleCookie
from typing import Any

from baseshift.core.access import Actor
from baseshift.core.errors import Unauthorized

from .logins import Logins, TokenPair
from .tokens import digest

SESSION_COOKIE = "bs_session"
REFRESH_COOKIE = "bs_refresh"
RENEWED_SECONDS = 5.0
"""How long a renewed session is handed to other requests bearing the same spent refresh
token (a page and its live stream renew at once): without it, the second would look like a
stolen token and end the session."""


def csrf_of(session: str) -> str:
    return hashlib.sha256(f"baseshift-csrf:{session}".encode()).hexdigest()


def _cookie(name: str, value: str, max_age: int, secure: bool) -> str:
    jar: SimpleCookie = SimpleCookie()
    jar[name] = value
    morsel = jar[name]
    morsel["path"] = "/"
    morsel["httponly"] = True
    morsel["samesite"] = "Lax"
    morsel["max-age"] = max_age
    if secure:
        morsel["secure"] = True
    return morsel.OutputString()


def session_cookies(pair: TokenPair, refresh_seconds: float, secure: bool) -> list[str]:
    return [_cookie(SESSION_COOKIE, pair.access_token, int(refresh_seconds), secure),
            _cookie(REFRESH_COOKIE, pair.refresh_token, int(refresh_seconds), secure)]


def cleared_cookies(secure: bool) -> list[str]:
    return [_cookie(SESSION_COOKIE, "", 0, secure), _cookie(REFRESH_COOKIE, "", 0, secure)]


class Sessions:
    """Session cookies to actors, renewing them through the login's refresh token."""

    def __init__(self, logins: Logins) -> None:
        self.logins = logins
        self._lock = asyncio.Lock()
        self._renewed: dict[str, tuple[float, TokenPair]] = {}

    async def actor(self, cookies: dict[str, str], secure: bool,
                    set_cookies: list[str]) -> Actor | None:
        """The actor of a session's cookies, or None (anonymous: the page asks to sign in)
        when it is over; cookies to set (renewed or cleared) are appended to `set_cookies`."""
        access, refresh = cookies.get(SESSION_COOKIE), cookies.get(REFRESH_COOKIE)
        if not access and not refresh:
            return None
        try:
            if access:
                return self._with_csrf(await self.logins.actor_for_access_token(access))
        except Unauthorized:
            pass
        if refresh:
            try:
                pair = await self._renew(refresh)
                set_cookies += session_cookies(pair, self.logins.refresh_lifetime, secure)
                return self._with_csrf(
                    await self.logins.actor_for_access_token(pair.access_token))
            except Unauthorized:
                pass
        set_cookies += cleared_cookies(secure)
        return None

    @staticmethod
    def _with_csrf(actor: Actor) -> Actor:
        session = actor.claims.get("sid")
        if not isinstance(session, str):
            raise Unauthorized("a session token without a session")
        claims: dict[str, Any] = {**actor.claims, "csrf": csrf_of(session)}
        return Actor(actor.id, actor.name, actor.kind, actor.grants, actor.user, claims)

    async def _renew(self, refresh: str) -> TokenPair:
        async with self._lock:
            now = time.monotonic()
            self._renewed = {k: v for k, v in self._renewed.items()
                             if now - v[0] < RENEWED_SECONDS}
            key = digest(refresh)
            if key in self._renewed:
                return self._renewed[key][1]
            pair = await self.logins.refresh(refresh)
            self._renewed[key] = (now, pair)
            return pair
