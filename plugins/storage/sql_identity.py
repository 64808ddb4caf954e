"""`IdentityStore` for the SQL state stores: each method is one transaction running the
statements of sql_accounts or sql_tokens, on the tables of identity_tables.

A store says only how a transaction gets its Connection: `_query` for reads (as for the run
queries) and `_transact` for writes, which defaults to `_query` and which SQLite overrides to
take the write lock at BEGIN. Constraint violations (a name or id taken) become `Conflict`,
other database errors `StoreError`; either way nothing was written.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from baseshift.core.access import Grant, Role
from baseshift.core.audit import AuditEntry
from baseshift.core.errors import Conflict, StoreError
from baseshift.core.identity import (
    ApiTokenRecord,
    RefreshTokenRecord,
    SigningKeyRecord,
    UserRecord,
)
from baseshift.core.storecalls import StoreCalls, observed

from . import sql_accounts as accounts
from . import sql_audit
from . import sql_tokens as tokens
from .identity_tables import USERS

T = TypeVar("T")


class SQLIdentity(ABC):
    """The `IdentityStore` methods of a store whose tables include identity_tables."""

    calls: StoreCalls

    @abstractmethod
    async def _query(self, fn: Callable[[Connection], T]) -> T:
        """`fn`'s result, called with a Connection in a transaction of this store."""

    async def _transact(self, fn: Callable[[Connection], T]) -> T:
        """`fn`'s result, called in a transaction that may write."""
        return await self._query(fn)

    async def _lookup(self, what: str, fn: Callable[[Connection], T]) -> T:
        return await _checked(what, self._query(fn))

    async def _change(self, what: str, fn: Callable[[Connection], T],
                      audit: Sequence[AuditEntry] = ()) -> T:
        """`fn`'s result, in a write transaction that also appends `audit` (unless `fn`
        answered False: it changed nothing, so there is nothing to record)."""

        def change(c: Connection) -> T:
            result = fn(c)
            if result is not False:
                sql_audit.append(c, audit)
            return result

        return await _checked(what, self._transact(change))

    # ------------------------------------------------------------ users

    @observed("add_user")
    async def add_user(self, user: UserRecord, grants: Sequence[Grant] = (),
                       audit: Sequence[AuditEntry] = ()) -> None:
        await self._change(f"adding user {user.name!r}",
                           lambda c: accounts.add_user(c, user, grants), audit=audit)

    @observed("save_user")
    async def save_user(self, user: UserRecord, audit: Sequence[AuditEntry] = ()) -> None:
        await self._change(f"saving user {user.name!r}", lambda c: accounts.save_user(c, user),
        audit=audit)

    @observed("get_user")
    async def get_user(self, name: str) -> UserRecord | None:
        found = await self._lookup(f"reading user {name!r}",
                                   lambda c: accounts.find_users(c, USERS.c.name == name))
        return found[0] if found else None

    @observed("get_user_by_id")
    async def get_user_by_id(self, user_id: str) -> UserRecord | None:
        found = await self._lookup(f"reading user {user_id!r}",
                                   lambda c: accounts.find_users(c, USERS.c.id == user_id))
        return found[0] if found else None

    @observed("list_users")
    async def list_users(self) -> list[UserRecord]:
        return await self._lookup("listing users", accounts.find_users)

    @observed("count_users")
    async def count_users(self) -> int:
        return await self._lookup("counting users", accounts.count_users)

    @observed("use_recovery_code")
    async def use_recovery_code(self, user_id: str, code_hash: str) -> bool:
        return await self._change(f"using a recovery code of user {user_id!r}",
                                  lambda c: accounts.use_recovery_code(c, user_id, code_hash))

    # ------------------------------------------------------------ roles and grants

    @observed("roles")
    async def roles(self) -> list[Role]:
        return await self._lookup("listing roles", accounts.roles)

    @observed("save_role")
    async def save_role(self, role: Role, audit: Sequence[AuditEntry] = ()) -> None:
        await self._change(f"saving role {role.name!r}", lambda c: accounts.save_role(c, role),
        audit=audit)

    @observed("delete_role")
    async def delete_role(self, name: str, audit: Sequence[AuditEntry] = ()) -> None:
        await self._change(f"deleting role {name!r}", lambda c: accounts.delete_role(c, name),
        audit=audit)

    @observed("grants_of")
    async def grants_of(self, user_id: str) -> list[Grant]:
        return await self._lookup(f"reading the grants of user {user_id!r}",
                                  lambda c: accounts.grants_of(c, user_id))

    @observed("set_grants")
    async def set_grants(self, user_id: str, grants: Sequence[Grant],
                         audit: Sequence[AuditEntry] = ()) -> None:
        await self._change(f"granting roles to user {user_id!r}",
                           lambda c: accounts.set_grants(c, user_id, grants), audit=audit)

    # ------------------------------------------------------------ API tokens

    @observed("add_api_token")
    async def add_api_token(self, token: ApiTokenRecord, audit: Sequence[AuditEntry] = ()) -> None:
        await self._change(f"adding API token {token.name!r}",
                           lambda c: tokens.add_api_token(c, token), audit=audit)

    @observed("find_api_token")
    async def find_api_token(self, token_hash: str) -> ApiTokenRecord | None:
        return await self._lookup("finding an API token",
                                  lambda c: tokens.find_api_token(c, token_hash))

    @observed("list_api_tokens")
    async def list_api_tokens(self, user_id: str | None = None) -> list[ApiTokenRecord]:
        return await self._lookup("listing API tokens",
                                  lambda c: tokens.list_api_tokens(c, user_id))

    @observed("revoke_api_token")
    async def revoke_api_token(self, token_id: str, at: float,
                               audit: Sequence[AuditEntry] = ()) -> bool:
        return await self._change(f"revoking API token {token_id!r}",
                                  lambda c: tokens.revoke_api_token(c, token_id, at), audit=audit)

    # ------------------------------------------------------------ refresh tokens

    @observed("add_refresh_token")
    async def add_refresh_token(self, token: RefreshTokenRecord,
                                audit: Sequence[AuditEntry] = ()) -> None:
        await self._change(f"adding a refresh token of user {token.user_id!r}",
                           lambda c: tokens.add_refresh_token(c, token), audit=audit)

    @observed("spend_refresh_token")
    async def spend_refresh_token(self, token_hash: str, at: float
                                  ) -> RefreshTokenRecord | None:
        return await self._change("spending a refresh token",
                                  lambda c: tokens.spend_refresh_token(c, token_hash, at))

    @observed("session_active")
    async def session_active(self, family: str) -> bool:
        return await self._lookup("reading a session",
                                  lambda c: tokens.session_active(c, family))

    @observed("revoke_refresh_family")
    async def revoke_refresh_family(self, family: str, at: float,
                                    audit: Sequence[AuditEntry] = ()) -> None:
        await self._change(f"revoking refresh token family {family!r}",
                           lambda c: tokens.revoke_refresh_family(c, family, at), audit=audit)

    @observed("revoke_user_refresh_tokens")
    async def revoke_user_refresh_tokens(self, user_id: str, at: float,
                                         audit: Sequence[AuditEntry] = ()) -> None:
        await self._change(f"revoking the refresh tokens of user {user_id!r}",
                           lambda c: tokens.revoke_user_refresh_tokens(c, user_id, at), audit=audit)

    # ------------------------------------------------------------ signing keys

    @observed("signing_keys")
    async def signing_keys(self) -> list[SigningKeyRecord]:
        return await self._lookup("listing signing keys", tokens.signing_keys)

    @observed("add_signing_key")
    async def add_signing_key(self, key: SigningKeyRecord,
                              audit: Sequence[AuditEntry] = ()) -> None:
        await self._change(f"adding signing key {key.kid!r}",
                           lambda c: tokens.add_signing_key(c, key), audit=audit)

    @observed("retire_signing_key")
    async def retire_signing_key(self, kid: str, at: float,
                                 audit: Sequence[AuditEntry] = ()) -> None:
        await self._change(f"retiring signing key {kid!r}",
                           lambda c: tokens.retire_signing_key(c, kid, at), audit=audit)


async def _checked(what: str, call: Awaitable[T]) -> T:
    try:
        return await call
    except IntegrityError as exc:
        raise Conflict(f"{what} was rejected, nothing was written: {_reason(exc)}") from exc
    except DBAPIError as exc:
        raise StoreError(f"{what} failed, nothing was written: {_reason(exc)}") from exc


def _reason(exc: DBAPIError) -> str:
    return " ".join(str(exc.orig).split())
