"""Credentials for tests: a user holding one role and an API token acting for it, made in
the application's own store (no password hashing, so no argon2 cost per test)."""
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
    """An API token of user `user` (default `<role>-tester`, made if missing) holding
    `role` on `scope`."""
    state = bs.stash[AUTH]
    name = user or f"{role}-tester"
    if await state.accounts.store.get_user(name) is None:
        await state.accounts.add_user(name, None, [Grant(role, scope)])
    _, secret = await state.logins.create_api_token(name, "tests", [Grant(role, scope)],
                                                    None)
    return secret


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
