"""Grants in the SQL state stores: roles given to a user (`user_roles`) or to an API token
(`api_token_roles`), by role id, with their scope and the order they were given in.

Shared by the account and token statements, which run them inside their own transaction.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Column, ColumnElement, Connection, Table, delete, insert, select

from baseshift.core.access import Grant
from baseshift.core.errors import NotFound

from .identity_tables import API_TOKEN_ROLES, ROLES, USER_ROLES


@dataclass(frozen=True, slots=True)
class GrantLinks:
    """A table linking owners (users or tokens) to roles, and its owner column."""

    table: Table
    owner: Column[str]


USER_GRANTS = GrantLinks(USER_ROLES, USER_ROLES.c.user_id)
TOKEN_GRANTS = GrantLinks(API_TOKEN_ROLES, API_TOKEN_ROLES.c.token_id)


def role_ids(conn: Connection, names: Iterable[str]) -> dict[str, int]:
    """The ids of the roles named; `NotFound` naming those that do not exist."""
    wanted = set(names)
    if not wanted:
        return {}
    rows = conn.execute(select(ROLES.c.name, ROLES.c.id).where(ROLES.c.name.in_(wanted)))
    found: dict[str, int] = {name: role_id for name, role_id in rows}
    missing = sorted(wanted - found.keys())
    if missing:
        raise NotFound(f"there is no role {', '.join(map(repr, missing))}",
                       hint="create the role first, or grant one that exists")
    return found


def write_grants(conn: Connection, links: GrantLinks, owner: str,
                 grants: Sequence[Grant]) -> None:
    """Replace the grants of `owner` (a repeated grant is kept once)."""
    wanted = list(dict.fromkeys(grants))
    ids = role_ids(conn, (g.role for g in wanted))
    conn.execute(delete(links.table).where(links.owner == owner))
    if wanted:
        conn.execute(insert(links.table), [
            {links.owner.name: owner, "role_id": ids[g.role], "scope": g.scope, "position": i}
            for i, g in enumerate(wanted)])


def read_grants(conn: Connection, links: GrantLinks,
                owners: ColumnElement[bool]) -> dict[str, list[Grant]]:
    """The grants of the owners `owners` selects (a condition on `links.owner`), in the order
    they were given."""
    stmt = (select(links.owner, ROLES.c.name, links.table.c.scope)
            .join(ROLES, ROLES.c.id == links.table.c.role_id)
            .where(owners).order_by(links.owner, links.table.c.position))
    found: dict[str, list[Grant]] = defaultdict(list)
    for owner, role, scope in conn.execute(stmt):
        found[owner].append(Grant(role, scope))
    return found
