"""What the state store keeps about people and machines: users, roles and their grants, API
tokens, refresh tokens and the keys that sign access tokens.

A state store that also implements `IdentityStore` holds them beside the runs (SQLite and
PostgreSQL in tables, memory for tests), so every server of a fleet sees the same accounts
and the same signing keys. Secrets are never stored: passwords as argon2id hashes, tokens
and recovery codes as SHA-256 digests of random values (see plugins/auth).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .access import Grant, Role
from .audit import AuditEntry, AuditLog


@dataclass(slots=True)
class UserRecord:
    """An account. `password_hash` is None for accounts that cannot log in with a password
    (an identity provider's users, service accounts); `totp_secret` is set at enrolment and
    counts once `totp_confirmed` (a code was entered); `recovery_codes` are digests of the
    unused ones. `must_change_password` forces a new password at the next login (the first
    admin, a temporary password set by an administrator)."""

    id: str
    name: str
    password_hash: str | None = None
    totp_secret: str | None = None
    totp_confirmed: bool = False
    totp_last_step: int | None = None
    """The TOTP time step of the last code accepted: a code is good once (no replay)."""
    recovery_codes: tuple[str, ...] = ()
    disabled: bool = False
    must_change_password: bool = False
    source: str = "local"
    """Where the account comes from: `local`, or `oidc:<issuer>` for a federated login."""
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(slots=True)
class ApiTokenRecord:
    """A named, expiring token for automation, acting for `user_id` with its own grants
    (never more than the user's own when it was made). Only the digest is kept."""

    id: str
    name: str
    user_id: str
    token_hash: str
    grants: tuple[Grant, ...]
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None


@dataclass(slots=True)
class RefreshTokenRecord:
    """One refresh token of a login session. Tokens of one login form a `family`: each use
    spends the token and issues the next; using a spent token again (a stolen copy) revokes
    the whole family."""

    token_hash: str
    family: str
    user_id: str
    created_at: float
    expires_at: float
    used_at: float | None = None
    revoked_at: float | None = None


@dataclass(slots=True)
class SigningKeyRecord:
    """A key pair signing access tokens. The newest unretired key signs; a retired one stays
    in the JWKS (so tokens it signed still verify) until its tokens have expired."""

    kid: str
    algorithm: str
    private_pem: str
    public_jwk: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    retired_at: float | None = None


@runtime_checkable
class IdentityStore(AuditLog, Protocol):
    """Accounts, roles, grants and tokens, kept by the state store. Each method is one
    transaction; `audit` entries given to a method that writes are appended to the store's
    audit trail (core/audit.py) in that transaction. A name or id already taken raises
    `Conflict`; an unknown one in an update raises `NotFound`."""

    async def add_user(self, user: UserRecord, grants: Sequence[Grant] = (),
                       audit: Sequence[AuditEntry] = ()) -> None: ...

    async def save_user(self, user: UserRecord,
                        audit: Sequence[AuditEntry] = ()) -> None:
        """Replace every field of the stored user with the same id."""
        ...

    async def get_user(self, name: str) -> UserRecord | None: ...

    async def get_user_by_id(self, user_id: str) -> UserRecord | None: ...

    async def list_users(self) -> list[UserRecord]:
        """Every user, by name."""
        ...

    async def count_users(self) -> int: ...

    async def use_recovery_code(self, user_id: str, code_hash: str) -> bool:
        """Remove one unused recovery code digest; False when it is not (any longer) there.
        Two logins racing with the same code: exactly one gets True."""
        ...

    async def roles(self) -> list[Role]:
        """Every role, by name."""
        ...

    async def save_role(self, role: Role,
                        audit: Sequence[AuditEntry] = ()) -> None:
        """Create or replace a role and its permissions."""
        ...

    async def delete_role(self, name: str,
                          audit: Sequence[AuditEntry] = ()) -> None:
        """Delete a role and every grant of it; `NotFound` if there is none."""
        ...

    async def grants_of(self, user_id: str) -> list[Grant]: ...

    async def set_grants(self, user_id: str, grants: Sequence[Grant],
                         audit: Sequence[AuditEntry] = ()) -> None:
        """Replace the user's grants (`NotFound` for an unknown user or role)."""
        ...

    async def add_api_token(self, token: ApiTokenRecord,
                            audit: Sequence[AuditEntry] = ()) -> None: ...

    async def find_api_token(self, token_hash: str) -> ApiTokenRecord | None: ...

    async def list_api_tokens(self, user_id: str | None = None) -> list[ApiTokenRecord]:
        """Tokens of one user (or of all), newest first, revoked ones included."""
        ...

    async def revoke_api_token(self, token_id: str, at: float,
                               audit: Sequence[AuditEntry] = ()) -> bool:
        """Mark a token revoked; False when there is no such unrevoked token."""
        ...

    async def add_refresh_token(self, token: RefreshTokenRecord,
                                audit: Sequence[AuditEntry] = ()) -> None: ...

    async def spend_refresh_token(self, token_hash: str, at: float
                                  ) -> RefreshTokenRecord | None:
        """Mark the token used at `at` and return it as it was before (so `used_at` is None
        on its first use and set on a reuse); None for an unknown token. Atomic: of two
        concurrent spends of one token exactly one sees `used_at` None."""
        ...

    async def session_active(self, family: str) -> bool:
        """Whether the login `family` goes on: some token of it is not revoked (a logout,
        a reuse, a password or MFA reset, a disabled user revoke them all)."""
        ...

    async def revoke_refresh_family(self, family: str, at: float,
                                    audit: Sequence[AuditEntry] = ()) -> None: ...

    async def revoke_user_refresh_tokens(self, user_id: str, at: float,
                                         audit: Sequence[AuditEntry] = ()) -> None:
        """End every login session of a user (disabled, password or MFA reset)."""
        ...

    async def signing_keys(self) -> list[SigningKeyRecord]:
        """Every signing key, oldest first."""
        ...

    async def add_signing_key(self, key: SigningKeyRecord,
                              audit: Sequence[AuditEntry] = ()) -> None: ...

    async def retire_signing_key(self, kid: str, at: float,
                                 audit: Sequence[AuditEntry] = ()) -> None: ...
