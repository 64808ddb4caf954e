"""Signing in and staying signed in: password + TOTP logins, refresh-token families, API
tokens, and the actor each credential stands for.

An unknown user and a wrong password get the same error after the same work (the password
is checked against a dummy hash), and both count against the throttle of the name and of
the client address."""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from baseshift.core import audit
from baseshift.core.access import Actor, Grant
from baseshift.core.errors import Forbidden, InputError, NotFound, Unauthorized
from baseshift.core.identity import ApiTokenRecord, RefreshTokenRecord, UserRecord

from .accounts import ROLE_CACHE_SECONDS, Accounts
from .oauth_clients import client_actor, is_client_token
from .signing import AccessTokens
from .throttle import LOGIN, THROTTLED, Throttle, TooManyAttempts
from .tokens import API_TOKEN_PREFIX, REFRESH_TOKEN_PREFIX, digest, new_token
from .totp import accept_code, code_digest

REFRESH_LIFETIME = 30 * 24 * 3600.0
WRONG_LOGIN = "wrong user name or password"


@dataclass(frozen=True, slots=True)
class TokenPair:
    """What a login or a refresh answers (the seed's shape)."""

    access_token: str
    refresh_token: str
    expires_in: int
    session: str
    """The refresh-token family: one login, whatever its tokens rotate into."""

    def json(self) -> dict[str, Any]:
        return {"access_token": self.access_token, "refresh_token": self.refresh_token,
                "token_type": "Bearer", "expires_in": self.expires_in}


class ActorCache:
    """The actors of credentials seen in the last `ROLE_CACHE_SECONDS` (never past the
    credential's expiry, and forgotten at any change of accounts made here), so a client
    sending the same token again costs no signature check and no store read."""

    LIMIT = 10_000

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts
        self._kept: dict[str, tuple[float, int, Actor]] = {}

    def get(self, credential: str, now: float) -> Actor | None:
        found = self._kept.get(digest(credential))
        if found is None:
            return None
        until, generation, actor = found
        if now >= until or generation != self.accounts.generation:
            return None
        return actor

    def keep(self, credential: str, actor: Actor, expires_at: float, now: float) -> Actor:
        if len(self._kept) >= self.LIMIT:
            self._kept = {k: v for k, v in self._kept.items() if v[0] > now}
            if len(self._kept) >= self.LIMIT:
                self._kept.clear()
        self._kept[digest(credential)] = (min(expires_at, now + ROLE_CACHE_SECONDS),
                                          self.accounts.generation, actor)
        return actor


class PasswordChangeRequired(Forbidden):
    code = "auth.password-change-required"


class EnrolmentRequired(Forbidden):
    code = "auth.mfa-enrolment-required"


class Logins:
    def __init__(self, accounts: Accounts, tokens: AccessTokens, *,
                 refresh_lifetime: float = REFRESH_LIFETIME,
                 clock: Callable[[], float] = time.time) -> None:
        self.accounts = accounts
        self.store = accounts.store
        self.tokens = tokens
        self.throttle = Throttle(self.store)
        self.refresh_lifetime = refresh_lifetime
        self.clock = clock
        self._actors = ActorCache(accounts)

    async def check_credentials(self, username: str, password: str, totp_code: str | None,
                                client: str) -> UserRecord:
        """The user whose password (and second factor, once enrolled) these are; raises
        `Unauthorized` (the same for an unknown name), `TooManyAttempts` when throttled."""
        try:
            await self.throttle.check(username, client)
        except TooManyAttempts:
            await self._refused(THROTTLED, username, client, "throttled")
            raise
        user = await self.store.get_user(username)
        stored = user.password_hash if user is not None else None
        if not self.accounts.passwords.verify(stored, password) or user is None \
                or user.disabled:
            await self._refused(LOGIN, username, client, "wrong name or password")
            raise Unauthorized(WRONG_LOGIN)
        if not await self._second_factor(user, totp_code):
            await self._refused(LOGIN, username, client, "wrong or missing TOTP code")
            raise Unauthorized("wrong or missing TOTP code",
                               hint="send totp_token: the 6 digits of your authenticator "
                                    "app, or one of your recovery codes",
                               details={"field": "totp_token"})
        user = await self._unchanged(user)
        assert user.password_hash is not None
        if self.accounts.passwords.needs_rehash(user.password_hash):
            user.password_hash = self.accounts.passwords.hash(password)
            await self.accounts.save(user)
        return user

    async def _refused(self, action: str, username: str, client: str, reason: str) -> None:
        """Audit a refused sign-in (the same entry for an unknown name): the throttle
        counts these."""
        who = replace(audit.acting(), client=client)
        outcome = audit.DENIED if action == THROTTLED else audit.FAILURE
        await self.store.append_audit([audit.entry(action, f"user:{username[:100]}", outcome,
                                                   who=who, reason=reason)])

    async def _unchanged(self, checked: UserRecord) -> UserRecord:
        """The user as stored now, provided nothing a sign-in relies on changed while it
        checked the password (tens of milliseconds): an administrator who disabled the
        account or reset its password or MFA meanwhile wins, and nothing read before is
        written back over their change."""
        now = await self.store.get_user_by_id(checked.id)
        if now is None or now.disabled or now.password_hash != checked.password_hash \
                or now.totp_secret != checked.totp_secret:
            raise Unauthorized(WRONG_LOGIN)
        return now

    async def _second_factor(self, user: UserRecord, code: str | None) -> bool:
        if not user.totp_confirmed or user.totp_secret is None:
            return True
        if not code:
            return False
        step = accept_code(user.totp_secret, code, user.totp_last_step, self.clock())
        if step is not None:
            now = await self._unchanged(user)
            if now.totp_last_step is not None and step <= now.totp_last_step:
                return False  # the same code, accepted by a concurrent sign-in
            now.totp_last_step = user.totp_last_step = step
            await self.accounts.save(now)
            return True
        used = code_digest(code)
        if not await self.store.use_recovery_code(user.id, used):
            return False
        # the record read before still lists it: a later save must not bring it back
        user.recovery_codes = tuple(c for c in user.recovery_codes if c != used)
        return True

    async def login(self, username: str, password: str, totp_code: str | None,
                    client: str) -> TokenPair:
        user = await self.check_credentials(username, password, totp_code, client)
        if user.must_change_password:
            raise PasswordChangeRequired(
                "this password must be changed before signing in",
                hint="POST /api/v1/auth/password with username, password, new_password "
                     "(and totp_token), or sign in on the web page")
        await self._check_enrolment(user)
        return await self._issue(user, uuid.uuid4().hex, "password", client)

    async def change_password(self, username: str, password: str, new_password: str,
                              totp_code: str | None, client: str) -> TokenPair:
        user = await self.check_credentials(username, password, totp_code, client)
        if new_password == password:
            raise InputError("the new password is the old one",
                             details={"field": "new_password"})
        user = await self.accounts.set_password(user.name, new_password, temporary=False,
                                                action="auth.password_change")
        await self._check_enrolment(user)
        return await self._issue(user, uuid.uuid4().hex, "password", client)

    async def _check_enrolment(self, user: UserRecord) -> None:
        if user.totp_confirmed:
            return
        if await self.accounts.mfa_required(await self.store.grants_of(user.id)):
            raise EnrolmentRequired(
                "a role of this user requires a second factor: enrol TOTP first",
                hint="sign in on the web page to enrol, or ask an administrator for "
                     "`baseshift users reset-mfa` and `baseshift users add --totp`")

    async def _issue(self, user: UserRecord, family: str, method: str | None = None,
                     client: str | None = None) -> TokenPair:
        """The token pair of a login (`method`: how the user signed in, audited) or of the
        next step of one (a refresh: not audited)."""
        now = self.clock()
        refresh = new_token(REFRESH_TOKEN_PREFIX)
        who = replace(audit.acting(), actor=user.name, client=client or audit.acting().client)
        entries = [] if method is None else [audit.entry(
            "auth.login", f"user:{user.name}", who=who, method=method, session=family)]
        await self.store.add_refresh_token(RefreshTokenRecord(
            token_hash=digest(refresh), family=family, user_id=user.id, created_at=now,
            expires_at=now + self.refresh_lifetime), audit=entries)
        access = await self.tokens.issue(user.id, {"name": user.name, "sid": family})
        return TokenPair(access.token, refresh, int(self.tokens.lifetime), family)

    async def enrolment_ticket(self, user: UserRecord) -> str:
        """A short-lived signed ticket letting the sign-in page finish a TOTP enrolment
        without asking for the password again (refused as an access token)."""
        return (await self.tokens.issue(user.id, {"purpose": "enrol"})).token

    async def enrolling_user(self, ticket: str) -> UserRecord:
        claims = await self.tokens.verify(ticket)
        user = await self.store.get_user_by_id(str(claims["sub"]))
        if claims.get("purpose") != "enrol" or user is None or user.disabled:
            raise Unauthorized("this enrolment has expired", hint="sign in again")
        return user

    async def session_for(self, user: UserRecord, method: str = "enrolment") -> TokenPair:
        """A new login of a user whose credentials were just proven (`method`: how, such
        as at an enrolment)."""
        return await self._issue(user, uuid.uuid4().hex, method)

    async def refresh(self, refresh_token: str) -> TokenPair:
        """The next token pair of a login; a spent token used again ends the login."""
        now = self.clock()
        record = await self.store.spend_refresh_token(digest(refresh_token), now)
        if record is None:
            raise Unauthorized("unknown refresh token", hint="sign in again")
        if record.used_at is not None or record.revoked_at is not None:
            user = await self.store.get_user_by_id(record.user_id)
            await self.store.revoke_refresh_family(record.family, now, audit=[audit.entry(
                "auth.refresh_reuse", f"user:{user.name if user else record.user_id}",
                audit.DENIED, session=record.family)])
            self.accounts.generation += 1
            raise Unauthorized("this refresh token was already used or revoked: the whole "
                               "session is ended", hint="sign in again")
        if record.expires_at <= now:
            raise Unauthorized("the refresh token has expired", hint="sign in again")
        user = await self.store.get_user_by_id(record.user_id)
        if user is None or user.disabled:
            raise Unauthorized("the user of this session is disabled")
        return await self._issue(user, record.family)

    async def logout(self, refresh_token: str | None, session: str | None = None) -> None:
        """End a login: the family of a refresh token, or a session named by its id."""
        now = self.clock()
        who = audit.acting()
        if refresh_token:
            record = await self.store.spend_refresh_token(digest(refresh_token), now)
            session = record.family if record is not None else session
            # the refresh token is the credential: its user signs out, not "anonymous"
            user = None if record is None else await self.store.get_user_by_id(record.user_id)
            who = who if user is None else replace(who, actor=user.name)
        if session:
            await self.store.revoke_refresh_family(session, now, audit=[
                audit.entry("auth.logout", f"session:{session}", who=who)])
            self.accounts.generation += 1  # its access tokens: no longer from the cache

    async def actor_for_access_token(self, token: str) -> Actor:
        cached = self._actors.get(token, self.clock())
        if cached is not None:
            return cached
        claims = await self.tokens.verify(token)
        if claims.get("purpose") is not None:  # an enrolment ticket is no access token
            raise Unauthorized("this token only serves to enrol a second factor")
        session = claims.get("sid")
        if isinstance(session, str) and not await self.store.session_active(session):
            raise Unauthorized("this session has ended (signed out, or its password or "
                               "second factor was reset)", hint="sign in again")
        if is_client_token(claims):  # a client-credentials grant (oauth_clients.py)
            return self._actors.keep(token, await client_actor(self.accounts, claims),
                                     float(claims["exp"]), self.clock())
        actor = await self.accounts.actor(str(claims["sub"]), claims={
            "sid": claims.get("sid"), "jti": claims.get("jti")})
        if actor is None:
            raise Unauthorized("the user of this token is disabled or no longer exists")
        return self._actors.keep(token, actor, float(claims["exp"]), self.clock())

    async def create_api_token(self, user_name: str, name: str, grants: Sequence[Grant],
                               expires_in: float | None) -> tuple[ApiTokenRecord, str]:
        """A new API token and its secret (shown once; only its digest is kept)."""
        user = await self.accounts.user(user_name)
        grants = await self.accounts.check_grants(grants)
        if not grants:
            raise InputError("an API token needs at least one role",
                             details={"field": "roles"})
        now = self.clock()
        secret = new_token(API_TOKEN_PREFIX)
        record = ApiTokenRecord(id=uuid.uuid4().hex, name=name, user_id=user.id,
                                token_hash=digest(secret), grants=tuple(grants),
                                created_at=now,
                                expires_at=None if expires_in is None else now + expires_in)
        await self.store.add_api_token(record, audit=[audit.entry(
            "token.create", f"token:{record.id}", name=name, user=user.name,
            roles=",".join(g.text for g in grants))])
        return record, secret

    async def actor_for_api_token(self, secret: str) -> Actor:
        cached = self._actors.get(secret, self.clock())
        if cached is not None:
            return cached
        record = await self.store.find_api_token(digest(secret))
        if record is None:
            raise Unauthorized("unknown API token")
        if record.revoked_at is not None:
            raise Unauthorized(f"the API token '{record.name}' is revoked")
        if record.expires_at is not None and record.expires_at <= self.clock():
            raise Unauthorized(f"the API token '{record.name}' has expired",
                               hint="make a new one with `baseshift tokens create`")
        actor = await self.accounts.actor(record.user_id,
                                          token=(record.id, record.name, record.grants))
        if actor is None:
            raise Unauthorized("the user of this API token is disabled")
        until = record.expires_at if record.expires_at is not None else float("inf")
        return self._actors.keep(secret, actor, until, self.clock())

    async def revoke_api_token(self, token_id: str) -> None:
        self.accounts.generation += 1
        if not await self.store.revoke_api_token(token_id, self.clock(), audit=[
                audit.entry("token.revoke", f"token:{token_id}")]):
            raise NotFound(f"there is no active API token '{token_id}'")
