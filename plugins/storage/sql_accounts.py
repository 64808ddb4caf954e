"""Users and roles in the SQL state stores: the statements of `IdentityStore`'s account
methods, each called by the store inside one transaction (sql_identity.py).

Columns are named as the record fields, so a row is a record's fields and back.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Insert,
    Table,
    delete,
    func,
    insert,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from baseshift.core.access import Grant, Role
from baseshift.core.errors import NotFound
from baseshift.core.identity import UserRecord

from .identity_tables import PERMISSIONS, RECOVERY_CODES, ROLE_PERMISSIONS, ROLES, USERS
from .sql_grants import USER_GRANTS, read_grants, write_grants

_DIALECT_INSERTS: dict[str, Callable[[Table], Any]] = {
    "sqlite": sqlite.insert, "postgresql": postgresql.insert}
"""`INSERT ... ON CONFLICT` is spelled alike but built by each dialect's own `insert`."""
_USER_COLUMNS = tuple(f.name for f in fields(UserRecord) if f.name != "recovery_codes")


def upsert(conn: Connection, table: Table) -> Any:
    """An `insert` of `table` offering `on_conflict_*` in the dialect of `conn`."""
    return _DIALECT_INSERTS[conn.dialect.name](table)


def require_user(conn: Connection, user_id: str) -> None:
    if conn.scalar(select(USERS.c.id).where(USERS.c.id == user_id)) is None:
        raise NotFound(f"there is no user with id {user_id!r}")


# ------------------------------------------------------------------ users


def add_user(conn: Connection, user: UserRecord, grants: Sequence[Grant]) -> None:
    conn.execute(insert(USERS), _user_row(user))
    _write_codes(conn, user)
    write_grants(conn, USER_GRANTS, user.id, grants)


def save_user(conn: Connection, user: UserRecord) -> None:
    """Replace every column of the user's row, and its recovery codes."""
    changed = conn.execute(update(USERS).where(USERS.c.id == user.id).values(_user_row(user)))
    if changed.rowcount == 0:
        raise NotFound(f"there is no user with id {user.id!r}")
    conn.execute(delete(RECOVERY_CODES).where(RECOVERY_CODES.c.user_id == user.id))
    _write_codes(conn, user)


def find_users(conn: Connection, where: ColumnElement[bool] | None = None) -> list[UserRecord]:
    """The users `where` selects (every user when None), by name."""
    where = true() if where is None else where
    rows = conn.execute(select(USERS).where(where).order_by(USERS.c.name)).mappings().all()
    codes: dict[str, list[str]] = defaultdict(list)
    in_users = RECOVERY_CODES.c.user_id.in_(select(USERS.c.id).where(where))
    for user_id, code in conn.execute(
            select(RECOVERY_CODES.c.user_id, RECOVERY_CODES.c.code_hash).where(in_users)
            .order_by(RECOVERY_CODES.c.user_id, RECOVERY_CODES.c.position)):
        codes[user_id].append(code)
    return [UserRecord(**row, recovery_codes=tuple(codes[row["id"]])) for row in rows]


def count_users(conn: Connection) -> int:
    return int(conn.scalar(select(func.count()).select_from(USERS)) or 0)


def use_recovery_code(conn: Connection, user_id: str, code_hash: str) -> bool:
    """Delete the code's row: of two concurrent deletes of one row only one counts it."""
    gone = conn.execute(delete(RECOVERY_CODES).where(RECOVERY_CODES.c.user_id == user_id,
                                                     RECOVERY_CODES.c.code_hash == code_hash))
    return gone.rowcount == 1


def _user_row(user: UserRecord) -> dict[str, Any]:
    return {name: getattr(user, name) for name in _USER_COLUMNS}


def _write_codes(conn: Connection, user: UserRecord) -> None:
    if user.recovery_codes:
        conn.execute(insert(RECOVERY_CODES), [
            {"user_id": user.id, "code_hash": code, "position": i}
            for i, code in enumerate(user.recovery_codes)])


# ------------------------------------------------------------------ grants


def grants_of(conn: Connection, user_id: str) -> list[Grant]:
    return read_grants(conn, USER_GRANTS, USER_GRANTS.owner == user_id).get(user_id, [])


def set_grants(conn: Connection, user_id: str, grants: Sequence[Grant]) -> None:
    require_user(conn, user_id)
    write_grants(conn, USER_GRANTS, user_id, grants)


# ------------------------------------------------------------------ roles


def roles(conn: Connection) -> list[Role]:
    """Every role with its permissions, by name."""
    granted: dict[int, set[str]] = defaultdict(set)
    for role_id, permission in conn.execute(
            select(ROLE_PERMISSIONS.c.role_id, PERMISSIONS.c.name)
            .join(PERMISSIONS, PERMISSIONS.c.id == ROLE_PERMISSIONS.c.permission_id)):
        granted[role_id].add(permission)
    rows = conn.execute(select(ROLES).order_by(ROLES.c.name)).mappings()
    return [Role(r["name"], frozenset(granted[r["id"]]), r["summary"], r["mfa"], r["builtin"])
            for r in rows]


def save_role(conn: Connection, role: Role) -> None:
    """Create the role or update it in place (its id, and so its grants, stay), then replace
    its permissions, declaring the names not seen before."""
    stmt = upsert(conn, ROLES).values(name=role.name, summary=role.summary, mfa=role.mfa,
                                      builtin=role.builtin)
    stmt = stmt.on_conflict_do_update(
        index_elements=[ROLES.c.name],
        set_={c: stmt.excluded[c] for c in ("summary", "mfa", "builtin")})
    role_id: int = conn.scalar(stmt.returning(ROLES.c.id))
    conn.execute(delete(ROLE_PERMISSIONS).where(ROLE_PERMISSIONS.c.role_id == role_id))
    if not role.permissions:
        return
    names = sorted(role.permissions)
    conn.execute(upsert(conn, PERMISSIONS).on_conflict_do_nothing(),
                 [{"name": n} for n in names])
    conn.execute(_link_permissions(role_id, names))


def _link_permissions(role_id: int, names: list[str]) -> Insert:
    return insert(ROLE_PERMISSIONS).from_select(
        ["role_id", "permission_id"],
        select(literal(role_id), PERMISSIONS.c.id).where(PERMISSIONS.c.name.in_(names)))


def delete_role(conn: Connection, name: str) -> None:
    """Delete the role; its permissions and grants go with it (ON DELETE CASCADE)."""
    if conn.execute(delete(ROLES).where(ROLES.c.name == name)).rowcount == 0:
        raise NotFound(f"there is no role {name!r}")
