"""`IdentityStore` in memory, for tests and benchmarks: the SQL stores' rules (sql_identity.py)
kept on dictionaries of record copies.

No method awaits before it has written, so each is atomic on the event loop: of two spends
of one refresh token the second sees the first's mark.
"""
from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from baseshift.core.access import Grant, Role
from baseshift.core.audit import AuditEntry
from baseshift.core.errors import Conflict, NotFound
from baseshift.core.identity import (
    ApiTokenRecord,
    RefreshTokenRecord,
    SigningKeyRecord,
    UserRecord,
)
from baseshift.core.storecalls import StoreCalls, observed

from .memory_audit import MemoryAudit


@dataclass(slots=True)
class IdentityData:
    """What a memory store keeps about people and machines, by id (roles by name)."""

    users: dict[str, UserRecord] = field(default_factory=dict)
    grants: dict[str, tuple[Grant, ...]] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)
    api_tokens: dict[str, ApiTokenRecord] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshTokenRecord] = field(default_factory=dict)
    signing_keys: dict[str, SigningKeyRecord] = field(default_factory=dict)


class MemoryIdentity(MemoryAudit):
    """The `IdentityStore` methods of the memory store (`_identity` and `_trail`, set by
    the store)."""

    calls: StoreCalls

    _identity: IdentityData

    # ------------------------------------------------------------ users

    @observed("add_user")
    async def add_user(self, user: UserRecord, grants: Sequence[Grant] = (),
                       audit: Sequence[AuditEntry] = ()) -> None:
        data = self._identity
        if user.id in data.users:
            raise Conflict(f"adding user {user.name!r} was rejected: id {user.id!r} is taken")
        self._check_user(user)
        given = self._known(grants)
        data.users[user.id] = dataclasses.replace(user)
        data.grants[user.id] = given
        self._write_audit(audit)

    @observed("save_user")
    async def save_user(self, user: UserRecord, audit: Sequence[AuditEntry] = ()) -> None:
        self._user(user.id)
        self._check_user(user)
        self._identity.users[user.id] = dataclasses.replace(user)
        self._write_audit(audit)

    @observed("get_user")
    async def get_user(self, name: str) -> UserRecord | None:
        found = self._named(name)
        return None if found is None else dataclasses.replace(found)

    @observed("get_user_by_id")
    async def get_user_by_id(self, user_id: str) -> UserRecord | None:
        found = self._identity.users.get(user_id)
        return None if found is None else dataclasses.replace(found)

    @observed("list_users")
    async def list_users(self) -> list[UserRecord]:
        users = sorted(self._identity.users.values(), key=lambda u: u.name)
        return [dataclasses.replace(u) for u in users]

    @observed("count_users")
    async def count_users(self) -> int:
        return len(self._identity.users)

    @observed("use_recovery_code")
    async def use_recovery_code(self, user_id: str, code_hash: str) -> bool:
        user = self._identity.users.get(user_id)
        if user is None or code_hash not in user.recovery_codes:
            return False
        user.recovery_codes = tuple(c for c in user.recovery_codes if c != code_hash)
        return True

    def _user(self, user_id: str) -> UserRecord:
        found = self._identity.users.get(user_id)
        if found is None:
            raise NotFound(f"there is no user with id {user_id!r}")
        return found

    def _named(self, name: str) -> UserRecord | None:
        return next((u for u in self._identity.users.values() if u.name == name), None)

    def _check_user(self, user: UserRecord) -> None:
        """What the SQL stores' unique constraints refuse."""
        other = self._named(user.name)
        if other is not None and other.id != user.id:
            raise Conflict(f"user name {user.name!r} is taken")
        if len(set(user.recovery_codes)) != len(user.recovery_codes):
            raise Conflict(f"user {user.name!r} has two equal recovery codes")

    # ------------------------------------------------------------ roles and grants

    @observed("roles")
    async def roles(self) -> list[Role]:
        return sorted(self._identity.roles.values(), key=lambda r: r.name)

    @observed("save_role")
    async def save_role(self, role: Role, audit: Sequence[AuditEntry] = ()) -> None:
        self._identity.roles[role.name] = role
        self._write_audit(audit)

    @observed("delete_role")
    async def delete_role(self, name: str, audit: Sequence[AuditEntry] = ()) -> None:
        data = self._identity
        if data.roles.pop(name, None) is None:
            raise NotFound(f"there is no role {name!r}")
        for user_id, grants in data.grants.items():
            data.grants[user_id] = tuple(g for g in grants if g.role != name)
        for token in data.api_tokens.values():
            token.grants = tuple(g for g in token.grants if g.role != name)
        self._write_audit(audit)

    @observed("grants_of")
    async def grants_of(self, user_id: str) -> list[Grant]:
        return list(self._identity.grants.get(user_id, ()))

    @observed("set_grants")
    async def set_grants(self, user_id: str, grants: Sequence[Grant],
                         audit: Sequence[AuditEntry] = ()) -> None:
        self._user(user_id)
        self._identity.grants[user_id] = self._known(grants)
        self._write_audit(audit)

    def _known(self, grants: Iterable[Grant]) -> tuple[Grant, ...]:
        """`grants` once each; `NotFound` naming the roles that do not exist."""
        wanted = tuple(dict.fromkeys(grants))
        missing = sorted({g.role for g in wanted} - self._identity.roles.keys())
        if missing:
            raise NotFound(f"there is no role {', '.join(map(repr, missing))}",
                           hint="create the role first, or grant one that exists")
        return wanted

    # ------------------------------------------------------------ API tokens

    @observed("add_api_token")
    async def add_api_token(self, token: ApiTokenRecord, audit: Sequence[AuditEntry] = ()) -> None:
        data = self._identity
        self._user(token.user_id)
        if token.id in data.api_tokens or any(t.token_hash == token.token_hash
                                              for t in data.api_tokens.values()):
            raise Conflict(f"adding API token {token.name!r} was rejected: its id or digest "
                           "is taken")
        data.api_tokens[token.id] = dataclasses.replace(token, grants=self._known(token.grants))
        self._write_audit(audit)

    @observed("find_api_token")
    async def find_api_token(self, token_hash: str) -> ApiTokenRecord | None:
        found = next((t for t in self._identity.api_tokens.values()
                      if t.token_hash == token_hash), None)
        return None if found is None else dataclasses.replace(found)

    @observed("list_api_tokens")
    async def list_api_tokens(self, user_id: str | None = None) -> list[ApiTokenRecord]:
        found = [t for t in self._identity.api_tokens.values()
                 if user_id is None or t.user_id == user_id]
        found.sort(key=lambda t: (t.created_at, t.id), reverse=True)
        return [dataclasses.replace(t) for t in found]

    @observed("revoke_api_token")
    async def revoke_api_token(self, token_id: str, at: float,
                               audit: Sequence[AuditEntry] = ()) -> bool:
        token = self._identity.api_tokens.get(token_id)
        if token is None or token.revoked_at is not None:
            return False
        token.revoked_at = at
        self._write_audit(audit)
        return True

    # ------------------------------------------------------------ refresh tokens

    @observed("add_refresh_token")
    async def add_refresh_token(self, token: RefreshTokenRecord,
                                audit: Sequence[AuditEntry] = ()) -> None:
        self._user(token.user_id)
        if token.token_hash in self._identity.refresh_tokens:
            raise Conflict("adding a refresh token was rejected: its digest is taken")
        self._identity.refresh_tokens[token.token_hash] = dataclasses.replace(token)
        self._write_audit(audit)

    @observed("spend_refresh_token")
    async def spend_refresh_token(self, token_hash: str, at: float
                                  ) -> RefreshTokenRecord | None:
        token = self._identity.refresh_tokens.get(token_hash)
        if token is None:
            return None
        before = dataclasses.replace(token)
        if token.used_at is None:
            token.used_at = at
        return before

    @observed("session_active")
    async def session_active(self, family: str) -> bool:
        return any(t.family == family and t.revoked_at is None
                   for t in self._identity.refresh_tokens.values())

    @observed("revoke_refresh_family")
    async def revoke_refresh_family(self, family: str, at: float,
                                    audit: Sequence[AuditEntry] = ()) -> None:
        self._revoke_refresh((t for t in self._identity.refresh_tokens.values()
                              if t.family == family), at)
        self._write_audit(audit)

    @observed("revoke_user_refresh_tokens")
    async def revoke_user_refresh_tokens(self, user_id: str, at: float,
                                         audit: Sequence[AuditEntry] = ()) -> None:
        self._user(user_id)
        self._revoke_refresh((t for t in self._identity.refresh_tokens.values()
                              if t.user_id == user_id), at)
        self._write_audit(audit)

    @staticmethod
    def _revoke_refresh(found: Iterable[RefreshTokenRecord], at: float) -> None:
        for token in found:
            if token.revoked_at is None:
                token.revoked_at = at

    # ------------------------------------------------------------ signing keys

    @observed("signing_keys")
    async def signing_keys(self) -> list[SigningKeyRecord]:
        keys = sorted(self._identity.signing_keys.values(), key=lambda k: (k.created_at, k.kid))
        return [_copy_key(k) for k in keys]

    @observed("add_signing_key")
    async def add_signing_key(self, key: SigningKeyRecord,
                              audit: Sequence[AuditEntry] = ()) -> None:
        if key.kid in self._identity.signing_keys:
            raise Conflict(f"adding signing key {key.kid!r} was rejected: the kid is taken")
        self._identity.signing_keys[key.kid] = _copy_key(key)
        self._write_audit(audit)

    @observed("retire_signing_key")
    async def retire_signing_key(self, kid: str, at: float,
                                 audit: Sequence[AuditEntry] = ()) -> None:
        key = self._identity.signing_keys.get(kid)
        if key is None:
            raise NotFound(f"there is no signing key {kid!r}")
        if key.retired_at is None:
            key.retired_at = at
        self._write_audit(audit)


def _copy_key(key: SigningKeyRecord) -> SigningKeyRecord:
    return dataclasses.replace(key, public_jwk=copy.deepcopy(key.public_jwk))
