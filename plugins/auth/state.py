"""What the auth plugins share in one application: `baseshift.stash[AUTH]`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from baseshift.core.access import Permission
from baseshift.core.stash import StashKey

if TYPE_CHECKING:
    from .accounts import Accounts
    from .logins import Logins
    from .sessions import Sessions


@dataclass(slots=True)
class AuthState:
    """The accounts, the login service, the web sessions and every declared permission (by
    name), made when the state store opens (plugins/auth/plugin.py `startup`)."""

    accounts: Accounts
    logins: Logins
    sessions: Sessions
    permissions: dict[str, Permission] = field(default_factory=dict)


AUTH: StashKey[AuthState] = StashKey("auth.state")


@dataclass(frozen=True, slots=True)
class SignInLink:
    """Another way to sign in, offered on the sign-in page (an identity provider's)."""

    label: str
    path: str


SIGN_IN_LINKS: StashKey[list[SignInLink]] = StashKey("auth.sign_in_links")
"""What the sign-in page offers beside the password form, added by plugins at start-up."""
