"""The rules of administering roles and API tokens, shared by the API and the web pages:
what a builtin role may change, which roles a token may be given, whose tokens one may
revoke. (Users need nothing here: `Accounts` holds every rule of theirs.)"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence

from baseshift.core import audit
from baseshift.core.access import ALL, SERVER, Actor, ActorKind, Grant, Role
from baseshift.core.errors import Conflict, Forbidden, InputError, NotFound
from baseshift.core.identity import ApiTokenRecord

from .accounts import check_name
from .rbac import grants_allow
from .state import AuthState


async def role_named(state: AuthState, name: str) -> Role:
    role = (await state.accounts.roles()).get(name)
    if role is None:
        raise NotFound(f"there is no role '{name}'")
    return role


async def save_role(state: AuthState, actor: Actor, name: str, permissions: Iterable[str],
                    summary: str = "", mfa: bool = False) -> Role:
    """Create or replace a custom role. A builtin role keeps its permissions and summary:
    only its MFA flag changes (asking for other permissions is a Conflict). Nobody puts
    into a role a permission they do not hold themselves."""
    check_name(name, "role")
    wanted = frozenset(permissions)
    await holds_all(state, actor, wanted)
    unknown = sorted(wanted - set(state.permissions) - {ALL})
    if unknown:
        raise InputError(f"unknown permission(s): {', '.join(unknown)}",
                         hint=f"permissions: {', '.join(sorted(state.permissions))}",
                         details={"field": "permissions"})
    current = (await state.accounts.roles()).get(name)
    role = Role(name, wanted, summary, mfa)
    if current is not None and current.builtin:
        if wanted != current.permissions:
            raise Conflict(f"the builtin role '{name}' keeps its permissions",
                           hint="make a custom role with the permissions you need")
        role = Role(name, current.permissions, current.summary, mfa, builtin=True)
    await state.accounts.store.save_role(role, audit=[audit.entry(
        "role.save", f"role:{name}", permissions=",".join(sorted(role.permissions)),
        mfa=str(role.mfa).lower())])
    state.accounts.forget_roles()
    return role


async def set_role_mfa(state: AuthState, actor: Actor, name: str, mfa: bool) -> Role:
    """Require (or stop requiring) a second factor of the holders of any role."""
    role = await role_named(state, name)
    return await save_role(state, actor, name, role.permissions, role.summary, mfa)


async def delete_role(state: AuthState, name: str) -> None:
    """Delete a custom role and every grant of it; a builtin one is a Conflict."""
    if (await role_named(state, name)).builtin:
        raise Conflict(f"the builtin role '{name}' cannot be deleted")
    await state.accounts.store.delete_role(name, audit=[audit.entry("role.delete",
                                                                     f"role:{name}")])
    state.accounts.forget_roles()


async def within_own(state: AuthState, actor: Actor, grants: Sequence[Grant]) -> None:
    """Refuse a role giving a permission the actor lacks: a token never widens its maker,
    and an administrator of users never grants more than they hold themselves."""
    roles = await state.accounts.roles()
    for grant in grants:
        role = roles.get(grant.role)
        await holds_all(state, actor, () if role is None else role.permissions,
                        f"role '{grant.role}' gives")


async def holds_all(state: AuthState, actor: Actor, permissions: Iterable[str],
                    what: str = "the role would give") -> None:
    """Refuse when the actor lacks one of `permissions` everywhere (`*`: any of them)."""
    roles = await state.accounts.roles()
    names = state.permissions if ALL in permissions else permissions
    for name in sorted(names):
        if not grants_allow(actor.grants, roles, state.permissions.get(name), name, SERVER):
            raise Forbidden(f"{what} {name}, which you do not hold",
                            details={"field": "roles"})


async def create_own_token(state: AuthState, actor: Actor, name: str,
                           grants: Sequence[Grant], expires_in: float | None
                           ) -> tuple[ApiTokenRecord, str]:
    """An API token of the actor's user, with roles the actor holds, and its secret (to
    show once). An API token cannot make another: a leaked or short-lived token must not
    mint itself a lasting successor that its revocation would not end."""
    if actor.kind in (ActorKind.TOKEN, ActorKind.CLIENT):
        raise Forbidden("an API token cannot make API tokens",
                        hint="sign in (POST /api/v1/auth/login or the web page) to make one")
    if actor.user is None:
        raise Forbidden("only a signed-in user can make API tokens")
    await within_own(state, actor, grants)
    return await state.logins.create_api_token(actor.user, name, grants, expires_in)


async def own_tokens(state: AuthState, actor: Actor) -> list[ApiTokenRecord]:
    """The API tokens of the actor's user, newest first, revoked ones included."""
    owner = await state.accounts.store.get_user(actor.user or "")
    return [] if owner is None else await state.accounts.store.list_api_tokens(owner.id)


async def revoke_token(state: AuthState, actor: Actor, token_id: str,
                       may_revoke_any: Callable[[], Awaitable[object]]) -> None:
    """Revoke one of the actor's tokens, or another user's once `may_revoke_any` (which
    raises Forbidden without `tokens:admin`) lets it; NotFound for an unknown id."""
    if token_id not in {t.id for t in await own_tokens(state, actor)}:
        every = await state.accounts.store.list_api_tokens(None)
        if token_id not in {t.id for t in every}:
            raise NotFound(f"there is no API token '{token_id}'")
        await may_revoke_any()
    await state.logins.revoke_api_token(token_id)
