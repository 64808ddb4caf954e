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
