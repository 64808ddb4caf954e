"""Accounts and roles: what an administrator does (`baseshift users`, the users API and
pages) and what every request needs (the actor a user id stands for, the roles' grants).

Roles are read through a short cache: every request is authorized against them, and a
change made on another server of the fleet is seen within `ROLE_CACHE_SECONDS`."""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from baseshift.core import audit
from baseshift.core.access import BUILTIN_ROLES, Actor, ActorKind, Grant, Role
from baseshift.core.errors import Conflict, InputError, NotFound
from baseshift.core.identity import IdentityStore, UserRecord

from .passwords import Passwords, password_problem
from .totp import accept_code, code_digest, new_recovery_codes, new_secret, provisioning_uri

ROLE_CACHE_SECONDS = 2.0
"""How long roles, and the actors credentials stand for, are reused before the store is
read again: a change made on another server of the fleet applies within this time (one
made on this server, at once)."""
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-@")


def check_name(name: str, what: str = "user") -> str:
    """A user or role name: 1–64 lower-case letters, digits and `._-@` (an e-mail address
    fits), so it reads the same in a URL, a log line and a shell."""
    if not 0 < len(name) <= 64 or not set(name) <= NAME_CHARS:
        raise InputError(f"{what} name {name!r} is not valid",
                         hint="use 1 to 64 lower-case letters, digits and . _ - @",
                         details={"field": "name"})
    return name


class Accounts:
    """Users, their grants and the roles, over an `IdentityStore`."""

    def __init__(self, store: IdentityStore, passwords: Passwords,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.passwords = passwords
        self.clock = clock
        self._roles: dict[str, Role] = {}
        self._roles_read = float("-inf")
        self.generation = 0
        """Counts the changes made here to accounts, grants and roles: what was derived
        from them before (cached actors) is stale once it moves."""

    async def ensure_builtin_roles(self) -> None:
        """Store the builtin roles as this build defines them: the missing ones, and the
        permissions and summary of those stored by an earlier version (a new permission, such
        as `logs:read` for `operator`, reaches a database made before it). Their MFA flag,
        which an administrator may change, is kept."""
        stored = {r.name: r for r in await self.store.roles()}
        for role in BUILTIN_ROLES:
            found = stored.get(role.name)
            if found is None:
                await self.store.save_role(role)
            elif (found.permissions, found.summary, found.builtin) != (
                    role.permissions, role.summary, True):
                await self.store.save_role(replace(role, mfa=found.mfa))
        self.forget_roles()

    async def roles(self) -> dict[str, Role]:
        if time.monotonic() - self._roles_read > ROLE_CACHE_SECONDS:
            self._roles = {r.name: r for r in await self.store.roles()}
            self._roles_read = time.monotonic()
        return self._roles

    def forget_roles(self) -> None:
        self._roles_read = float("-inf")
        self.generation += 1

    async def check_grants(self, grants: Iterable[Grant]) -> tuple[Grant, ...]:
        roles = await self.roles()
        checked = tuple(dict.fromkeys(grants))
        for grant in checked:
            if grant.role not in roles:
                raise NotFound(f"there is no role '{grant.role}'",
                               hint=f"roles: {', '.join(sorted(roles))}",
                               details={"field": "roles"})
        return checked

    async def add_user(self, name: str, password: str | None, grants: Sequence[Grant], *,
                       temporary: bool = False, totp: bool = False, source: str = "local"
                       ) -> tuple[UserRecord, str | None]:
        """Create a user; with `totp`, enrol a TOTP secret at once (confirmed: whoever set
        it up hands the URI over) and return its provisioning URI. `source` says where the
        account comes from (`oidc:<issuer>`: an identity provider's user)."""
        check_name(name)
        if password is not None:
            self.check_password(password, name)
        grants = await self.check_grants(grants)
        if await self.store.get_user(name) is not None:  # before the cost of hashing
            raise Conflict(f"there is already a user '{name}'")
        now = self.clock()
        user = UserRecord(id=uuid.uuid4().hex, name=name,
                          password_hash=None if password is None
                          else self.passwords.hash(password),
                          must_change_password=temporary and password is not None,
                          source=source, created_at=now, updated_at=now)
        uri = None
        if totp:
            user.totp_secret, user.totp_confirmed = new_secret(), True
            uri = provisioning_uri(user.totp_secret, name)
        await self.store.add_user(user, grants, audit=[audit.entry(
            "user.create", f"user:{name}", roles=",".join(g.text for g in grants),
            totp=str(totp).lower(), temporary=str(user.must_change_password).lower())])
        return user, uri

    def check_password(self, password: str, name: str) -> None:
        problem = password_problem(password, name)
        if problem is not None:
            raise InputError(f"password refused: {problem}", details={"field": "password"})

    async def user(self, name: str) -> UserRecord:
        user = await self.store.get_user(name)
        if user is None:
            raise NotFound(f"there is no user '{name}'")
        return user

    async def save(self, user: UserRecord, *, end_sessions: bool = False,
                   action: str | None = None) -> UserRecord:
        """Store the changed user; `action` names the audited change (None: bookkeeping,
        such as the last TOTP step accepted)."""
        self.generation += 1
        user.updated_at = self.clock()
        entries = [] if action is None else [audit.entry(action, f"user:{user.name}")]
        await self.store.save_user(user, audit=entries)
        if end_sessions:
            await self.store.revoke_user_refresh_tokens(user.id, self.clock())
        return user

    async def set_disabled(self, name: str, disabled: bool) -> UserRecord:
        user = await self.user(name)
        user.disabled = disabled
        return await self.save(user, end_sessions=disabled,
                               action="user.disable" if disabled else "user.enable")

    async def set_password(self, name: str, password: str, *, temporary: bool,
                           action: str = "user.set_password") -> UserRecord:
        """Set a password (`action`: an administrator's, or the user's own change)."""
        user = await self.user(name)
        self.check_password(password, name)
        user.password_hash = self.passwords.hash(password)
        user.must_change_password = temporary
        return await self.save(user, end_sessions=True, action=action)

    async def reset_mfa(self, name: str) -> UserRecord:
        """Forget the user's TOTP secret and recovery codes: the next login enrols anew."""
        user = replace(await self.user(name), totp_secret=None, totp_confirmed=False,
                       totp_last_step=None, recovery_codes=())
        return await self.save(user, end_sessions=True, action="user.reset_mfa")

    async def begin_enrolment(self, user: UserRecord) -> str:
        """The TOTP secret being enrolled (kept unconfirmed until a code proves the app has
        it; a second visit shows the same one)."""
        if user.totp_secret is None or user.totp_confirmed:
            user.totp_secret, user.totp_confirmed = new_secret(), False
            await self.save(user)
        return user.totp_secret

    async def confirm_enrolment(self, user: UserRecord, code: str) -> list[str] | None:
        """Confirm the pending TOTP secret with a code from the app: the ten recovery codes
        (shown once; only digests are kept), or None for a wrong code."""
        if user.totp_secret is None or user.totp_confirmed:
            return None
        step = accept_code(user.totp_secret, code, None, self.clock())
        if step is None:
            return None
        codes = new_recovery_codes()
        user.totp_confirmed, user.totp_last_step = True, step
        user.recovery_codes = tuple(code_digest(c) for c in codes)
        await self.save(user, action="auth.mfa_enrol")
        return codes

    async def set_grants(self, name: str, grants: Sequence[Grant]) -> list[Grant]:
        user = await self.user(name)
        self.generation += 1
        checked = await self.check_grants(grants)
        await self.store.set_grants(user.id, checked, audit=[audit.entry(
            "user.grants", f"user:{name}", roles=",".join(g.text for g in checked))])
        return await self.store.grants_of(user.id)

    async def mfa_required(self, grants: Iterable[Grant]) -> bool:
        roles = await self.roles()
        return any(roles[g.role].mfa for g in grants if g.role in roles)

    async def actor(self, user_id: str, *, token: tuple[str, str, tuple[Grant, ...]] | None
                    = None, claims: dict[str, object] | None = None) -> Actor | None:
        """The actor an active user stands for (None: unknown or disabled). An API token
        `(id, name, grants)` acts with its own grants, and never beyond what its user still
        holds: the user's grants travel in the claims as `user_grants` (core/access.py)."""
        user = await self.store.get_user_by_id(user_id)
        if user is None or user.disabled:
            return None
        held = tuple(await self.store.grants_of(user_id))
        claims = dict(claims or {})
        if token is None:
            return Actor(id=user.id, name=user.name, kind=ActorKind.USER, grants=held,
                         user=user.name, claims=claims)
        token_id, token_name, grants = token
        claims["user_grants"] = held
        return Actor(id=token_id, name=f"{user.name}/{token_name}", kind=ActorKind.TOKEN,
                     grants=grants, user=user.name, claims=claims)
