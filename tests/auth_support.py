"""Credentials for tests: a user holding one role and a token acting for it, made in the
application's own store (no password hashing, so no argon2 cost per test)."""
from __future__ import annotations

from typing import Any

from baseshift.core.access import Grant
from baseshift.core.appface import App
from baseshift.plugins.auth.state import AUTH

AUTH_OFF = {"BASESHIFT_AUTH": "none"}
"""The environment of a server process a test drives without credentials (on loopback,
where `--auth none` is allowed): for tests of durability or scale, not of access."""

NO_FIRST_ADMIN: dict[str, Any] = {"auth": {"first_admin": False}}
"""Settings `extra` for an app serving in-process: no `admin` with a printed password."""


async def token_for(bs: App, role: str = "admin", scope: str = "*",
                    user: str | None = None) -> str:
    """An access token (what signing in gives) of user `user` (default `<role>-tester`, made
    if missing, with no password) holding `role` on `scope`."""
    state = bs.stash[AUTH]
    name = user or f"{role}-tester"
    account = await state.accounts.store.get_user(name)
    if account is None:
        account, _ = await state.accounts.add_user(name, None, [Grant(role, scope)])
    return (await state.logins.session_for(account)).access_token


async def api_token_for(bs: App, role: str = "admin", user: str | None = None) -> str:
    """An API token (`bsat_…`) of `<role>-tester` holding `role`."""
    await token_for(bs, role, user=user)
    _, secret = await bs.stash[AUTH].logins.create_api_token(
        user or f"{role}-tester", "tests", [Grant(role)], None)
    return secret


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
