"""The builtin `authorize` hook: role-based access from the roles and grants in the store.

A grant on every workflow (`*`) gives all of its role's permissions; a grant limited to a
name pattern gives only the role's scoped permissions, and only on runs and sources of the
workflows it matches. An API token, and a client acting through one, is held to its own
grants and to its user's at once."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from baseshift.core.access import Actor, ActorKind, Decision, Grant, Permission, Resource, Role
from baseshift.core.appface import App
from baseshift.core.hookspecs import hookimpl

from .state import AUTH


def grants_allow(grants: Iterable[Grant], roles: Mapping[str, Role],
                 permission: Permission | None, name: str, resource: Resource) -> bool:
    """Whether any of `grants` gives permission `name` on `resource`. An undeclared
    permission (`permission` None) is only ever given by a role holding everything."""
    for grant in grants:
        role = roles.get(grant.role)
        if role is None or not role.allows(name):
            continue
        if permission is None and name not in role.permissions and grant.scope != "*":
            continue
        if grant.scope == "*" or (permission is not None and permission.scoped
                                  and grant.covers(resource.workflow)):
            return True
    return False


@hookimpl
async def authorize(baseshift: App, actor: Actor, permission: str,
                    resource: Resource) -> Decision | None:
    state = baseshift.stash[AUTH]
    if actor.kind is ActorKind.LOCAL:
        return Decision.ALLOW
    roles = await state.accounts.roles()
    declared = state.permissions.get(permission)
    if not grants_allow(actor.grants, roles, declared, permission, resource):
        return None
    if actor.kind in (ActorKind.TOKEN, ActorKind.CLIENT):
        held = actor.claims.get("user_grants", ())
        if not isinstance(held, tuple) or not grants_allow(held, roles, declared, permission,
                                                           resource):
            return Decision.DENY
    return Decision.ALLOW
