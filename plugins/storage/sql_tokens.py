"""API tokens, refresh tokens and signing keys in the SQL state stores: the statements of
`IdentityStore`'s token methods, each called by the store inside one transaction
(sql_identity.py).

Columns are named as the record fields, so a row is a record's fields and back.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, insert, select, true, update

from baseshift.core.errors import NotFound
from baseshift.core.identity import ApiTokenRecord, RefreshTokenRecord, SigningKeyRecord

from .identity_tables import API_TOKENS, REFRESH_TOKENS, SIGNING_KEYS
from .sql_accounts import require_user
from .sql_grants import TOKEN_GRANTS, read_grants, write_grants

_API_TOKEN_COLUMNS = tuple(f.name for f in fields(ApiTokenRecord) if f.name != "grants")
_NEWEST_FIRST = (API_TOKENS.c.created_at.desc(), API_TOKENS.c.id.desc())


def _row(record: Any, columns: tuple[str, ...] | None = None) -> dict[str, Any]:
    names = columns or tuple(f.name for f in fields(record))
    return {name: getattr(record, name) for name in names}


# ------------------------------------------------------------------ API tokens


def add_api_token(conn: Connection, token: ApiTokenRecord) -> None:
    require_user(conn, token.user_id)
    conn.execute(insert(API_TOKENS), _row(token, _API_TOKEN_COLUMNS))
    write_grants(conn, TOKEN_GRANTS, token.id, token.grants)


def find_api_token(conn: Connection, token_hash: str) -> ApiTokenRecord | None:
    found = _api_tokens(conn, API_TOKENS.c.token_hash == token_hash)
    return found[0] if found else None


def list_api_tokens(conn: Connection, user_id: str | None) -> list[ApiTokenRecord]:
    return _api_tokens(conn, true() if user_id is None else API_TOKENS.c.user_id == user_id)


def _api_tokens(conn: Connection, where: ColumnElement[bool]) -> list[ApiTokenRecord]:
    """The tokens `where` selects, with their grants, newest first."""
    rows = conn.execute(select(API_TOKENS).where(where).order_by(*_NEWEST_FIRST)
                        ).mappings().all()
    grants = read_grants(conn, TOKEN_GRANTS,
                         TOKEN_GRANTS.owner.in_(select(API_TOKENS.c.id).where(where)))
    return [ApiTokenRecord(**row, grants=tuple(grants.get(row["id"], ()))) for row in rows]


def revoke_api_token(conn: Connection, token_id: str, at: float) -> bool:
    revoked = conn.execute(update(API_TOKENS).values(revoked_at=at).where(
        API_TOKENS.c.id == token_id, API_TOKENS.c.revoked_at.is_(None)))
    return revoked.rowcount == 1


# ------------------------------------------------------------------ refresh tokens


def add_refresh_token(conn: Connection, token: RefreshTokenRecord) -> None:
    require_user(conn, token.user_id)
    conn.execute(insert(REFRESH_TOKENS), _row(token))


def spend_refresh_token(conn: Connection, token_hash: str,
                        at: float) -> RefreshTokenRecord | None:
    """The token as it was, marked used if it was not. The row lock (PostgreSQL) or the
    write lock taken at BEGIN (SQLite) makes a concurrent spend wait, then read it used."""
    this = REFRESH_TOKENS.c.token_hash == token_hash
    row = conn.execute(select(REFRESH_TOKENS).where(this).with_for_update()).mappings().first()
    if row is None:
        return None
    if row["used_at"] is None:
        conn.execute(update(REFRESH_TOKENS).values(used_at=at).where(this))
    return RefreshTokenRecord(**row)


def session_active(conn: Connection, family: str) -> bool:
    stmt = select(REFRESH_TOKENS.c.token_hash).where(
        REFRESH_TOKENS.c.family == family, REFRESH_TOKENS.c.revoked_at.is_(None)).limit(1)
    return conn.execute(stmt).first() is not None


def revoke_refresh_family(conn: Connection, family: str, at: float) -> None:
    _revoke_refresh_tokens(conn, REFRESH_TOKENS.c.family == family, at)


def revoke_user_refresh_tokens(conn: Connection, user_id: str, at: float) -> None:
    require_user(conn, user_id)
    _revoke_refresh_tokens(conn, REFRESH_TOKENS.c.user_id == user_id, at)


def _revoke_refresh_tokens(conn: Connection, which: ColumnElement[bool], at: float) -> None:
    """Revoke the tokens `which` selects; one revoked already keeps its first date."""
    conn.execute(update(REFRESH_TOKENS).values(revoked_at=at).where(
        which, REFRESH_TOKENS.c.revoked_at.is_(None)))


# ------------------------------------------------------------------ signing keys


def signing_keys(conn: Connection) -> list[SigningKeyRecord]:
    """Every key, oldest first."""
    rows = conn.execute(select(SIGNING_KEYS).order_by(SIGNING_KEYS.c.created_at,
                                                      SIGNING_KEYS.c.kid)).mappings()
    return [SigningKeyRecord(**row) for row in rows]


def add_signing_key(conn: Connection, key: SigningKeyRecord) -> None:
    conn.execute(insert(SIGNING_KEYS), _row(key))


def retire_signing_key(conn: Connection, kid: str, at: float) -> None:
    """Retire the key; one retired already keeps its first date (its tokens' expiry counts
    from then)."""
    retired = conn.execute(update(SIGNING_KEYS).where(SIGNING_KEYS.c.kid == kid).values(
        retired_at=func.coalesce(SIGNING_KEYS.c.retired_at, at)))
    if retired.rowcount == 0:
        raise NotFound(f"there is no signing key {kid!r}")
